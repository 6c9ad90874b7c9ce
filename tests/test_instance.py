from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ki2api_tray.desktop.instance import SingleInstance


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_instance_second_lock_in_same_process_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "ki2api-tray.lock"
    first, second = SingleInstance(lock), SingleInstance(lock)
    try:
        assert first.acquire()
        assert first.is_owner
        assert not second.acquire()
        assert not second.is_owner
    finally:
        first.release()
        second.release()


def test_instance_second_launch_rings_the_first(tmp_path: Path) -> None:
    lock = tmp_path / "ki2api-tray.lock"
    shown = threading.Event()
    first = SingleInstance(lock)
    first.set_on_show(shown.set)
    second = SingleInstance(lock)
    try:
        assert first.acquire()
        assert not second.acquire()
        assert second.ask_running_to_show()
        assert shown.wait(5)
    finally:
        first.release()


def test_instance_release_lets_the_next_one_in(tmp_path: Path) -> None:
    lock = tmp_path / "ki2api-tray.lock"
    first, second = SingleInstance(lock), SingleInstance(lock)
    assert first.acquire()
    first.release()
    assert not lock.with_suffix(".port").exists()
    try:
        assert second.acquire()
    finally:
        second.release()


def test_instance_ring_without_a_running_instance_fails_quietly(tmp_path: Path) -> None:
    assert not SingleInstance(tmp_path / "ki2api-tray.lock").ask_running_to_show(timeout=0.2)


def test_instance_a_broken_show_callback_keeps_the_doorbell_working(tmp_path: Path) -> None:
    lock = tmp_path / "ki2api-tray.lock"
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("tray not ready")

    first = SingleInstance(lock, on_show=flaky)
    try:
        assert first.acquire()
        assert SingleInstance(lock).ask_running_to_show()
        assert SingleInstance(lock).ask_running_to_show()
        wait_for(lambda: len(calls) == 2)
    finally:
        first.release()


def _child(lock: Path, body: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from ki2api_tray.desktop.instance import SingleInstance
        instance = SingleInstance(Path({str(lock)!r}))
        {body}
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_instance_second_process_rings_and_exits(tmp_path: Path) -> None:
    lock = tmp_path / "ki2api-tray.lock"
    shown = threading.Event()
    first = SingleInstance(lock, on_show=shown.set)
    try:
        assert first.acquire()
        child = _child(lock, "print(instance.acquire(), instance.ask_running_to_show())")
        out, _ = child.communicate(timeout=30)
        assert out.split() == ["False", "True"]
        assert shown.wait(5)
    finally:
        first.release()


def test_instance_lock_is_freed_when_the_owner_is_killed(tmp_path: Path) -> None:
    lock = tmp_path / "ki2api-tray.lock"
    child = _child(lock, "print(instance.acquire(), flush=True); time.sleep(60)")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "True"
        assert not SingleInstance(lock).acquire()
    finally:
        child.kill()
        child.wait(timeout=10)
    survivor = SingleInstance(lock)
    try:
        assert survivor.acquire()
    finally:
        survivor.release()

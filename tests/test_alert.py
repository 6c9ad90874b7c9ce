"""Start-up failures reach the person: the log file and a native dialog, even with stdout/stderr closed."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ki2api_tray.desktop.alert import MB_ICONERROR, MB_SETFOREGROUND, tell_person


class FakeUser32:
    def __init__(self, answer: int = 1) -> None:
        self.answer = answer
        self.calls: list[tuple[Any, str, str, int]] = []

    def MessageBoxW(self, owner: Any, text: str, caption: str, style: int) -> int:  # noqa: N802 - the Win32 name
        self.calls.append((owner, text, caption, style))
        return self.answer


def test_tell_person_on_windows_shows_an_error_message_box_in_front() -> None:
    user32 = FakeUser32()

    shown = tell_person("ki2api could not start", "Port 8989 is in use", platform="win32", user32=user32)

    assert shown == "message box"
    [(owner, text, caption, style)] = user32.calls
    assert (owner, text, caption) == (None, "Port 8989 is in use", "ki2api could not start")
    assert style & MB_ICONERROR and style & MB_SETFOREGROUND


def test_tell_person_on_windows_reports_a_box_that_could_not_show() -> None:
    assert tell_person("t", "m", platform="win32", user32=FakeUser32(answer=0)) == ""


def test_tell_person_on_macos_runs_an_osascript_alert_with_the_text_as_arguments() -> None:
    commands: list[list[str]] = []

    def run(command: list[str]) -> int:
        commands.append(command)
        return 0

    shown = tell_person('Can\'t "start"', 'a "quoted" \\ text', platform="darwin", run=run)

    assert shown == "alert"
    [command] = commands
    assert command[0] == "/usr/bin/osascript" and "System Events" not in " ".join(command)  # no Automation prompt
    assert command[-2:] == ['Can\'t "start"', 'a "quoted" \\ text']  # passed as argv, never spliced into the script
    script = [part for flag, part in zip(command, command[1:], strict=False) if flag == "-e"]
    assert script[0] == "on run argv" and script[-1] == "end run"
    assert script[1].startswith("display alert (item 1 of argv) message (item 2 of argv)")


def test_tell_person_on_linux_uses_notify_send_only_in_a_graphical_session(tmp_path: Path) -> None:
    tool = tmp_path / "notify-send"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    commands: list[list[str]] = []

    def run(command: list[str]) -> int:
        commands.append(command)
        return 0

    assert tell_person("t", "m", platform="linux", environ={"PATH": str(tmp_path)}, run=run) == ""
    assert commands == []
    assert tell_person("t", "m", platform="linux", environ={"PATH": str(tmp_path), "DISPLAY": ":5"}, run=run)
    assert commands[0][0] == str(tool) and commands[0][-2:] == ["t", "m"]


def test_tell_person_never_raises() -> None:
    def broken(command: list[str]) -> int:
        raise OSError("osascript is missing")

    assert tell_person("t", "m", platform="darwin", run=broken) == ""


# --- the real program, started like a double-click: no stdout, no stderr ------------------------------------


def fake_notify_send(folder: Path) -> Path:
    """A notify-send on PATH that records what it was asked to show: the platform call, faked."""
    record = folder / "shown.txt"
    tool = folder / "notify-send"
    tool.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a" >> {shlex.quote(str(record))}; done\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return record


def run_closed(args: list[str], tmp_path: Path, extra_env: dict[str, str] | None = None) -> int:
    """Run ki2api-tray with stdout and stderr *closed*, as a windowed build starts (sys.stdout is None)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.pop("PYSTRAY_BACKEND", None)  # the desktop path must get as far as it would for a person
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "DISPLAY": ":99"}, **(extra_env or {}))
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "ki2api_tray", *args])
    return subprocess.run(["/bin/sh", "-c", f"exec {command} </dev/null >&- 2>&-"], env=env, timeout=60).returncode


@pytest.fixture
def home() -> Path:
    return Path(os.environ["KI2API_HOME"])


def log_text(home: Path) -> str:
    return (home / "logs" / "ki2api-tray.log").read_text(encoding="utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="closes descriptors through /bin/sh")
def test_bad_config_with_closed_streams_is_logged_and_shown(tmp_path: Path, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.json").write_text('{"port": 8990,}', encoding="utf-8")
    (tmp_path / "bin").mkdir()
    shown = fake_notify_send(tmp_path / "bin")

    assert run_closed([], tmp_path) == 2

    assert "config.json is not valid JSON" in log_text(home)
    lines = shown.read_text(encoding="utf-8")
    assert "ki2api could not start" in lines and "config.json is not valid JSON" in lines
    assert str(home / "logs" / "ki2api-tray.log") in lines  # where to look next


@pytest.mark.skipif(sys.platform == "win32", reason="closes descriptors through /bin/sh")
def test_refused_host_with_closed_streams_is_logged_and_shown(tmp_path: Path, home: Path) -> None:
    (tmp_path / "bin").mkdir()
    shown = fake_notify_send(tmp_path / "bin")

    assert run_closed(["--host", "0.0.0.0"], tmp_path) == 2

    assert "refusing to listen on 0.0.0.0" in log_text(home)
    assert "refusing to listen on 0.0.0.0" in shown.read_text(encoding="utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="closes descriptors through /bin/sh")
def test_bad_log_level_is_reported_not_a_crash(tmp_path: Path, home: Path) -> None:
    (tmp_path / "bin").mkdir()
    shown = fake_notify_send(tmp_path / "bin")

    assert run_closed([], tmp_path, {"KI2API_LOG_LEVEL": "chatty"}) == 2

    assert "log_level must be one of" in log_text(home)
    assert "log_level must be one of" in shown.read_text(encoding="utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="closes descriptors through /bin/sh")
def test_serve_errors_are_logged_but_never_pop_up(tmp_path: Path, home: Path) -> None:
    """`serve` is the terminal and Docker path: errors go to stderr and the log, not to a dialog."""
    (tmp_path / "bin").mkdir()
    shown = fake_notify_send(tmp_path / "bin")

    assert run_closed(["serve", "--host", "0.0.0.0"], tmp_path) == 2

    assert "refusing to listen" in log_text(home)
    assert not shown.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="closes descriptors through /bin/sh")
def test_taken_port_with_closed_streams_is_logged(tmp_path: Path, home: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        assert run_closed(["serve", "--port", str(port)], tmp_path) == 1

    assert f"Port {port} is already in use" in log_text(home)


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_running_instance_that_does_not_answer_is_explained(tmp_path: Path, home: Path) -> None:
    """A second double-click while a hung ki2api holds the lock: without a word it would look ignored."""
    import fcntl

    lock_file = home / "state" / "ki2api-tray.lock"
    lock_file.parent.mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    shown = fake_notify_send(tmp_path / "bin")
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp"], pass_fds=[write_end])
    os.close(write_end)
    try:
        with os.fdopen(read_end) as display_pipe, open(lock_file, "a+b") as held:
            number = display_pipe.readline().strip()
            fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # the hung instance: lock, no doorbell

            assert run_closed([], tmp_path, {"DISPLAY": f":{number}", "PYSTRAY_BACKEND": "xorg"}) == 0
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)

    assert "ki2api is already running but does not answer" in shown.read_text(encoding="utf-8")

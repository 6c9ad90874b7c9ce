"""TokenFileWatcher with real file writes: atomic replace, rewrite, delete, folders created late or removed."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ki2api_tray.kiro.watcher import TokenFileWatcher, watch_target

NOTICE_WITHIN = 1.0  # seconds: "atomic replace, rewrite, delete and re-create all noticed within a second"
QUIET = 0.6  # how long "nothing more happens" is observed after a burst (several debounce windows)


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = NOTICE_WITHIN) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.count >= count, timeout):
                raise AssertionError(f"expected {count} callbacks within {timeout} s, got {self.count}")


def wait_for(condition: Callable[[], object], timeout: float = NOTICE_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def write_atomically(path: Path, data: dict[str, str]) -> None:
    """What Kiro and most token writers do: temp file in the same folder, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


@pytest.fixture
def token_path(tmp_path: Path) -> Path:
    return tmp_path / "user" / ".aws" / "sso" / "cache" / "kiro-auth-token.json"


@pytest.fixture
def watch(token_path: Path) -> Iterator[Callable[..., tuple[TokenFileWatcher, Calls]]]:
    watchers: list[TokenFileWatcher] = []

    def start(**kwargs: float) -> tuple[TokenFileWatcher, Calls]:
        calls = Calls()
        watcher = TokenFileWatcher(token_path, calls, home=token_path.parents[3], **{"debounce": 0.1, **kwargs})
        watcher.start()
        watchers.append(watcher)
        return watcher, calls

    yield start
    for watcher in watchers:
        watcher.stop()


def test_watcher_atomic_replace_is_noticed(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    token_path.parent.mkdir(parents=True)
    write_atomically(token_path, {"accessToken": "a"})
    watcher, calls = watch()
    assert watcher.watched_dir == token_path.parent
    write_atomically(token_path, {"accessToken": "b"})
    calls.wait_for(1)


def test_watcher_rewrite_in_place_is_noticed(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    token_path.parent.mkdir(parents=True)
    token_path.write_text("{}")
    _, calls = watch()
    with token_path.open("w") as handle:
        handle.write('{"accessToken": ')
        handle.flush()
        handle.write('"c"}')
    calls.wait_for(1)


def test_watcher_delete_and_recreate_are_noticed(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    token_path.parent.mkdir(parents=True)
    token_path.write_text("{}")
    _, calls = watch()
    token_path.unlink()
    calls.wait_for(1)
    token_path.write_text('{"accessToken": "d"}')
    calls.wait_for(2)


def test_watcher_burst_gives_one_callback(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    token_path.parent.mkdir(parents=True)
    _, calls = watch()
    for n in range(10):
        write_atomically(token_path, {"accessToken": str(n)})
    calls.wait_for(1)
    time.sleep(QUIET)  # observing that nothing else arrives needs some time to pass
    assert calls.count == 1


def test_watcher_other_files_are_ignored(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    token_path.parent.mkdir(parents=True)
    _, calls = watch()
    (token_path.parent / "aws-toolkit-cache.json").write_text("{}")
    write_atomically(token_path.parent / "other.json", {"x": "y"})
    time.sleep(QUIET)
    assert calls.count == 0


def test_watcher_folder_created_late(watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path) -> None:
    home = token_path.parents[3]
    home.mkdir(parents=True)
    watcher, calls = watch()
    assert watcher.watched_dir is None  # never the home folder: a cheap timer looks for ~/.aws instead
    token_path.parent.mkdir(parents=True)  # like `mkdir -p ~/.aws/sso/cache` on first Kiro login
    write_atomically(token_path, {"accessToken": "e"})
    calls.wait_for(1)
    wait_for(lambda: watcher.watched_dir == token_path.parent)
    write_atomically(token_path, {"accessToken": "f"})
    calls.wait_for(2)


def test_watcher_folder_created_one_level_at_a_time(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    home = token_path.parents[3]
    home.mkdir(parents=True)
    _, calls = watch()
    for level in (home / ".aws", home / ".aws" / "sso", token_path.parent):
        level.mkdir()
    token_path.write_text('{"accessToken": "g"}')
    calls.wait_for(1)


def test_watcher_watches_the_nearest_folder_below_home(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    aws = token_path.parents[2]
    aws.mkdir(parents=True)  # ~/.aws exists (the AWS CLI made it), sso/cache does not yet
    watcher, calls = watch()
    assert watcher.watched_dir == aws
    token_path.parent.mkdir(parents=True)
    write_atomically(token_path, {"accessToken": "j"})
    calls.wait_for(1)
    wait_for(lambda: watcher.watched_dir == token_path.parent)


@pytest.mark.parametrize(
    ("existing", "token", "expected"),
    [
        ("home/.aws/sso/cache", "home/.aws/sso/cache/t.json", "home/.aws/sso/cache"),
        ("home/.aws", "home/.aws/sso/cache/t.json", "home/.aws"),
        ("home", "home/.aws/sso/cache/t.json", None),  # the home folder: FSEvents would report all of it
        ("home", "home/t.json", None),  # a token straight in home: the timer, not a watch on home
        ("srv/tokens", "srv/tokens/t.json", "srv/tokens"),  # KIRO_TOKEN_FILE outside home
        ("srv", "srv/tokens/t.json", "srv"),
        ("", "nowhere/tokens/t.json", None),  # only the folder above home exists
    ],
)
def test_watch_target_is_never_home_or_above(tmp_path: Path, existing: str, token: str, expected: str | None) -> None:
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / existing).mkdir(parents=True, exist_ok=True)

    target = watch_target(tmp_path / token, tmp_path / "home")

    assert target == (tmp_path / expected if expected else None)


def test_watch_target_never_the_root() -> None:
    assert watch_target(Path("/no-such-ki2api-folder/t.json"), Path("/no-such-home")) is None


def test_watcher_survives_folder_removed_and_recreated(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    token_path.parent.mkdir(parents=True)
    token_path.write_text("{}")
    _, calls = watch()
    shutil.rmtree(token_path.parents[2])  # rm -rf ~/.aws
    calls.wait_for(1)  # the token is gone
    token_path.parent.mkdir(parents=True)
    write_atomically(token_path, {"accessToken": "h"})
    calls.wait_for(2)
    write_atomically(token_path, {"accessToken": "i"})
    calls.wait_for(3)


def test_watcher_safety_poll_catches_missed_changes(
    watch: Callable[..., tuple[TokenFileWatcher, Calls]], token_path: Path
) -> None:
    token_path.parent.mkdir(parents=True)
    watcher, calls = watch(poll_interval=0.2)
    observer = watcher._observer
    assert observer is not None
    observer.stop()  # events are lost from now on, as after a sleep/resume or on a network home
    observer.join()
    token_path.write_text('{"accessToken": "j"}')
    calls.wait_for(1)


def test_watcher_keeps_going_after_a_failing_callback(token_path: Path) -> None:
    token_path.parent.mkdir(parents=True)
    calls = Calls()

    def flaky() -> None:
        calls()
        if calls.count == 1:
            raise RuntimeError("token store hiccup")

    watcher = TokenFileWatcher(token_path, flaky, debounce=0.1)
    watcher.start()
    try:
        token_path.write_text("{}")
        calls.wait_for(1)
        token_path.unlink()
        calls.wait_for(2)
    finally:
        watcher.stop()


def test_watcher_stop_ends_its_threads(token_path: Path) -> None:
    token_path.parent.mkdir(parents=True)
    watcher = TokenFileWatcher(token_path, lambda: None)
    watcher.start()
    observer = watcher._observer
    watcher.stop()
    assert not any(t.name == "ki2api-token-watcher" for t in threading.enumerate())
    assert observer is not None and not observer.is_alive()

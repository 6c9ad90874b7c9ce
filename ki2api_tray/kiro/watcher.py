"""TokenFileWatcher: tells the service when a login file (Kiro's token file, kiro-cli's database) changed.

watchdog watches the file's *directory* (or its nearest existing ancestor below the home folder, re-armed
downwards as folders appear), because atomic writers only produce a `moved` event whose destination is the
token file and a missing directory makes watchdog fail. It never watches the home folder or anything above
it: macOS FSEvents streams are recursive and watchdog stats every path they report, which makes macOS ask
the person for access to Downloads, Documents or other apps' data. Until a folder on the token's path exists
below home, a cheap timer looks for it. Bursts are debounced to one callback; a slow poll backs it up.
`companions` are more names in the same folder that count as the file: sqlite writes a WAL database's
changes to `data.sqlite3-wal` long before the main file (kiro-protocol-2026.md §5).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from .. import paths

log = logging.getLogger(__name__)

# Events that can change the file's content or existence; opened/closed_no_write/attrib cannot.
_RELEVANT = frozenset({"created", "modified", "moved", "deleted", "closed"})
_Signature = tuple[tuple[int, int, int] | None, ...]  # (inode, size, mtime_ns) per name; None when absent


class TokenFileWatcher:
    """Calls `on_change()` once per burst of changes to `path`, from its own thread.

    Invariants: at most one observer runs at a time, and only the worker thread starts or stops it
    (an observer cannot be joined from its own dispatch thread). `on_change` never runs concurrently.
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], None],
        debounce: float = 0.3,
        poll_interval: float = 60.0,
        max_delay: float = 2.0,
        appear_interval: float = 0.5,
        home: Path | None = None,
        companions: tuple[str, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.names = frozenset({self.path.name, *companions})
        self.home = home if home is not None else paths.home_dir()
        self.appear_interval = appear_interval  # how often to look for the folder while none can be watched
        self.on_change = on_change
        self.debounce = debounce
        self.poll_interval = poll_interval
        self.max_delay = max_delay  # a file rewritten non-stop still gets reported this often
        self._wake = threading.Condition()
        self._closing = False
        self._rearm = False
        self._due: float | None = None
        self._burst_started: float | None = None
        self._thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        self._watched: Path | None = None
        self._signature: _Signature = ()

    @property
    def watched_dir(self) -> Path | None:
        """The directory watchdog currently watches (the token's folder once it exists)."""
        return self._watched

    def start(self) -> None:
        if self._thread is not None:
            return
        self._closing = False
        self._signature = _signature(self.path, self.names)
        self._arm()
        self._thread = threading.Thread(target=self._run, name="ki2api-token-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None
        self._disarm()

    # --- called from the observer's dispatch thread ---------------------------------------------------

    def _on_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _RELEVANT:
            return
        watched = self._watched
        if watched is None:
            return
        paths = [Path(os.fsdecode(p)) for p in (event.src_path, event.dest_path) if p]
        if watched != self.path.parent or not watched.is_dir():
            # Watching an ancestor (or our folder vanished): something on the way may have appeared.
            self._request(rearm=True)
            return
        # Compare names, not full paths: FSEvents reports realpath-ed paths (/var -> /private/var).
        if any(p.name in self.names for p in paths):
            self._request(change=True)

    # --- worker thread ---------------------------------------------------------------------------------

    def _request(self, *, change: bool = False, rearm: bool = False) -> None:
        with self._wake:
            now = time.monotonic()
            if rearm:
                self._rearm = True
            if change:
                if self._burst_started is None:
                    self._burst_started = now
                self._due = min(now + self.debounce, self._burst_started + self.max_delay)
            self._wake.notify_all()

    def _run(self) -> None:
        next_poll = time.monotonic() + self.poll_interval
        next_look = time.monotonic() + self.appear_interval
        while True:
            with self._wake:
                while not self._closing and not self._rearm:
                    now = time.monotonic()
                    deadline = min(next_poll, self._due if self._due is not None else next_poll)
                    if self._watched is None:  # nothing watchable yet: look for the folder now and then
                        deadline = min(deadline, next_look)
                        if now >= next_look:
                            self._rearm = True
                            break
                    if now >= deadline:
                        break
                    self._wake.wait(deadline - now)
                if self._closing:
                    return
                rearm, self._rearm = self._rearm, False
                now = time.monotonic()
                if rearm:
                    next_look = now + self.appear_interval
                fire = self._due is not None and now >= self._due
                if fire:
                    self._due = self._burst_started = None
                poll = now >= next_poll
                pending = self._due is not None
            if poll:
                next_poll = now + self.poll_interval
            try:
                if rearm or poll:
                    self._arm_if_moved()
                if fire:
                    self._signature = _signature(self.path, self.names)
                    self._notify()
                elif (rearm or poll) and not pending:
                    # A folder appeared or time passed: report a file that changed while nobody watched.
                    current = _signature(self.path, self.names)
                    if current != self._signature:
                        self._signature = current
                        self._notify()
            except Exception:  # the watcher must outlive any single failure
                log.exception("token watcher step failed")

    def _notify(self) -> None:
        try:
            self.on_change()
        except Exception:
            log.exception("token change handler failed")

    def _arm_if_moved(self) -> None:
        target = watch_target(self.path, self.home)
        if target is None and self._watched is None:
            return
        if target != self._watched or self._observer is None or not self._observer.is_alive():
            self._arm()

    def _arm(self) -> None:
        """(Re)start the observer on the deepest existing folder on the way to the token, if one may be watched."""
        self._disarm()
        for _attempt in range(5):
            target = watch_target(self.path, self.home)
            if target is None:
                log.debug("no folder of %s below home yet; looking every %.1f s", self.path, self.appear_interval)
                return
            observer = _start_observer(target, self)
            if observer is not None:
                self._observer, self._watched = observer, target
                # The folder chain may have grown while we were arming: go one level deeper now.
                if watch_target(self.path, self.home) != target:
                    self._request(rearm=True)
                return
        log.warning("cannot watch %s; relying on the %.0f s poll", self.path.parent, self.poll_interval)

    def _disarm(self) -> None:
        observer, self._observer, self._watched = self._observer, None, None
        if observer is not None:
            observer.stop()
            if observer is not threading.current_thread():
                observer.join(timeout=5.0)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: TokenFileWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._watcher._on_event(event)


def _start_observer(directory: Path, watcher: TokenFileWatcher) -> BaseObserver | None:
    """A running observer on `directory`, or None if the folder vanished meanwhile."""
    for kind in (Observer, PollingObserver):
        observer = kind()
        try:
            observer.schedule(_Handler(watcher), str(directory), recursive=False)
            observer.start()
            return observer
        except FileNotFoundError:
            # The folder disappeared between "exists" and start() (watchdog#1069); the caller retries.
            return None
        except OSError as exc:
            # e.g. the inotify watch limit is reached: a polling observer still works.
            log.warning("native file watching failed for %s (%s); polling instead", directory, exc)
    return None


def watch_target(token_file: Path, home: Path) -> Path | None:
    """The folder to watch for `token_file`: the deepest existing one on its path, unless that is the home
    folder, a folder above it, or the root; None means "nothing may be watched yet"."""
    current = token_file.parent
    while not current.is_dir() and current.parent != current:
        current = current.parent
    if current.parent == current or _contains(current, home):
        return None
    return current


def _contains(folder: Path, other: Path) -> bool:
    """True when `other` is `folder` or lies inside it."""
    try:
        other.relative_to(folder)
    except ValueError:
        return False
    return True


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _signature(path: Path, names: frozenset[str]) -> _Signature:
    return tuple(_stat(path.parent / name) for name in sorted(names))

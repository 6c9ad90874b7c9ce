"""One ki2api per user: an OS file lock, plus a loopback doorbell so a second launch can say "show".

The lock (fcntl.flock / msvcrt.locking) is released by the OS even when the process is killed, so
there is no stale-PID cleanup. The first instance records its doorbell port in a file next to the lock.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

SHOW = b"show\n"
ACK = b"ok\n"


class SingleInstance:
    """Take the per-user lock; if someone else has it, ring their doorbell instead.

    Usage: `if not instance.acquire(): instance.ask_running_to_show(); exit`. The first instance calls
    `on_show` (set it with `set_on_show`) whenever a later launch rings.
    """

    def __init__(self, lock_file: Path, on_show: Callable[[], None] | None = None) -> None:
        self.lock_file = lock_file
        self.port_file = lock_file.with_suffix(".port")
        self._on_show = on_show
        self._handle: IO[bytes] | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def is_owner(self) -> bool:
        return self._handle is not None

    def set_on_show(self, callback: Callable[[], None]) -> None:
        self._on_show = callback

    def acquire(self) -> bool:
        """True if this process is now the one instance (and its doorbell is listening)."""
        if self._handle is not None:
            return True
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_file, "a+b")  # noqa: SIM115 - held open for the process lifetime
        if not _try_lock(handle):
            handle.close()
            return False
        self._handle = handle
        self._start_doorbell()
        return True

    def ask_running_to_show(self, timeout: float = 2.0) -> bool:
        """Ring the running instance; True if it answered."""
        deadline = time.monotonic() + timeout
        # The first instance writes its port just after taking the lock; give a racing launch a moment.
        while not self.port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            port = int(self.port_file.read_text(encoding="ascii").strip())
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
                conn.sendall(SHOW)
                return conn.recv(16) == ACK
        except (OSError, ValueError) as exc:
            log.warning("could not reach the running ki2api: %s", exc)
            return False

    def release(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._handle is not None:
            self.port_file.unlink(missing_ok=True)
            _unlock(self._handle)
            self._handle.close()
            self._handle = None

    def _start_doorbell(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.2)  # lets the thread notice release() on every OS
        port = listener.getsockname()[1]
        self._listener = listener
        self.port_file.write_text(f"{port}\n", encoding="ascii")
        self._thread = threading.Thread(target=self._serve, args=(listener,), name="ki2api-doorbell", daemon=True)
        self._thread.start()

    def _serve(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(2.0)
                    if conn.recv(16) != SHOW:
                        continue
                    conn.sendall(ACK)
                except OSError:
                    continue
            if self._on_show is not None:
                try:
                    self._on_show()
                except Exception:  # a broken callback must not silence the doorbell
                    log.exception("showing the running instance failed")


def _try_lock(handle: IO[bytes]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(handle: IO[bytes]) -> None:
    try:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError:
        log.debug("unlocking %s failed", handle.name, exc_info=True)

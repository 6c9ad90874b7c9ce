"""Serve an ASGI app from uvicorn in a daemon thread on a loopback socket we bound, with TCP_NODELAY.

Without TCP_NODELAY a small first write can wait ~40 ms for a delayed ACK (Nagle) and distort timings
(kiro-protocol.md §11). asyncio already sets it on accepted sockets; the protocol below sets it again
explicitly and reports what the socket says, so a test can prove it instead of trusting it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

STARTUP_TIMEOUT = 10.0


def nodelay_protocol(on_connection: Callable[[bool], None]) -> type[H11Protocol]:
    """An h11 protocol class that sets TCP_NODELAY on each connection and reports whether it stuck."""

    class NoDelayH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            sock = transport.get_extra_info("socket")
            enabled = False
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                enabled = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            on_connection(enabled)
            super().connection_made(transport)

    return NoDelayH11Protocol


class QuietAbort(logging.Filter):
    """Drop uvicorn's "Exception in ASGI application" record for deliberate mid-stream disconnects."""

    def __init__(self, exc_type: type[BaseException]) -> None:
        super().__init__()
        self.exc_type = exc_type

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        seen: set[int] = set()
        # Exception chains can loop (a context that points back), so stop at the first repeat.
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            if isinstance(exc, self.exc_type):
                return False
            group = getattr(exc, "exceptions", None)
            exc = group[0] if group else exc.__cause__ or exc.__context__
        return True


class Listener:
    """A loopback socket bound at once (so the port is known), then one uvicorn thread serving it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, app: Any, on_connection: Callable[[bool], None]) -> None:
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            loop="asyncio",
            http=nodelay_protocol(on_connection),
            ws="none",
            lifespan="off",
            # Scripted pauses can be long; never let them hold up the end of the test session.
            timeout_graceful_shutdown=1,
        )
        server = self.server = uvicorn.Server(config)
        thread = self.thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self.sock]}, name="fake-kiro", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake Kiro server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.server is None or self.thread is None:
            self.sock.close()
            return
        self.server.should_exit = True
        self.thread.join(5)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(2)

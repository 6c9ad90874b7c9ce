"""ProxyService: runs the HTTP server in a thread, follows the token file, and keeps AppState current.

It binds the socket itself so "port in use" becomes a state instead of uvicorn's silent `sys.exit` in a
thread, runs a fresh `uvicorn.Server` per start, and is the only writer of the server phase. The server
reports requests through `reporter`; the tray and `/health` only read `AppState`.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import math
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import Settings
from .core.client_config import CLIENT_FILES, plan_for
from .core.client_config import Plan as Plan  # for the tray
from .core.client_config import SetupError as SetupError
from .core.client_config import snippets as snippets
from .kiro.watcher import TokenFileWatcher
from .state import AppState, Phase, Quota, Reporter, RequestRecord, Status, TokenHealth, TokenStatus
from .usage.store import UsageStore
from .wording import port_in_use_message

log = logging.getLogger(__name__)

# Windows reports a taken port as WSAEADDRINUSE (10048), or WSAEACCES (10013) when another socket holds
# it exclusively or the port lies in a range Hyper-V reserved.
_IN_USE_WINERRORS = (10048, 10013)
START_TIMEOUT = 15.0
# A port that was busy a moment ago (our previous run still closing, the old process still exiting) is
# usually free again within this long; a program that really holds it is reported after it.
BIND_RETRY = 2.0
_BIND_RETRY_STEP = 0.1
# SO_LINGER on with a zero timeout: close() sends a reset and leaves no TIME_WAIT entry behind.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


def _reset_on_close(transport: object) -> None:
    """Make closing this accepted connection leave nothing behind that keeps the port.

    Windows refuses to bind a port with SO_EXCLUSIVEADDRUSE while any connection accepted on it lingers,
    TIME_WAIT included (Microsoft, "Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE"); Stop -> Start or
    Quit -> relaunch would then report "port in use" for minutes. Only used on idle connections, whose
    last response was delivered, so the reset loses nothing.
    """
    get_extra_info = getattr(transport, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    except OSError:
        pass  # already closed by the peer


def _is_idle(connection: object) -> bool:
    """No request in progress: uvicorn's own test before it closes a connection at shutdown."""
    cycle = getattr(connection, "cycle", None)
    return cycle is None or bool(getattr(cycle, "response_complete", False))


class _Connection(H11Protocol):
    """uvicorn's h11 connection, whose idle keep-alive timeout closes without leaving TIME_WAIT."""

    def timeout_keep_alive_handler(self) -> None:
        _reset_on_close(self.transport)
        super().timeout_keep_alive_handler()


class _Server(uvicorn.Server):
    """uvicorn's server, closing the accepted connections so that nothing keeps the port after a stop."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for connection in list(self.server_state.connections):
            if _is_idle(connection):
                _reset_on_close(getattr(connection, "transport", None))
        await super().shutdown(sockets)
        # Whatever the grace period did not finish is cut off now, without TIME_WAIT either.
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            _reset_on_close(transport)
            if transport is not None:
                transport.abort()


def local_now() -> datetime:
    return datetime.now().astimezone()


def _rolled_over(status: Status, today: str) -> Status:
    """Start the "today" counters afresh once the local date has changed."""
    if status.counts_date == today:
        return status
    return replace(status, counts_date=today, requests_today=0, errors_today=0)


def account_alert(record: RequestRecord | None) -> str:
    """"suspended" or "out_of_credits" when a failed request says so (kiro-protocol-2026.md §7), else ""."""
    if record is None:
        return ""
    text = record.error.lower()
    if record.status == 402 or record.error_kind == "insufficient_quota" or "overage_request_limit" in text:
        return "out_of_credits"
    if record.status == 403 and ("suspended" in text or "locked your account" in text or "locked it" in text):
        return "suspended"
    return ""


class StateReporter:
    """The `Reporter` the HTTP server calls; it turns each report into one atomic AppState change.

    Request records also go to the usage store (queued: the request path never waits for the disk).
    An error stays on show with its time until the same kind of thing succeeds again.
    """

    def __init__(
        self, state: AppState, clock: Callable[[], datetime] = local_now, usage: UsageStore | None = None
    ) -> None:
        self._state = state
        self._clock = clock
        self._usage = usage

    def request_finished(self, ok: bool, error: str = "", record: RequestRecord | None = None) -> None:
        now = self._clock()
        if self._usage is not None:
            self._usage.add(record or RequestRecord(time=now, status=200 if ok else 500, error=error))
        credits = record.credits if record is not None and record.credits else 0.0

        def count(status: Status) -> Status:
            status = _rolled_over(status, now.date().isoformat())
            failed = 0 if ok else 1
            changes: dict[str, object] = {}
            if not ok:
                changes.update(last_error=error or status.last_error, last_error_at=now, last_error_kind="request")
                alert = account_alert(record)
                if alert:
                    changes.update(account_alert=alert, account_message=error)
            else:
                changes.update(account_alert="", account_message="")
                if status.last_error_kind == "request":
                    changes.update(last_error="", last_error_at=None, last_error_kind="")
            quota = status.quota
            if credits and quota is not None:
                # Kiro's figure is read every 15 minutes; until then, count what its meteringEvents said.
                quota = replace(quota, used=quota.used + credits)
            return replace(
                status,
                requests_today=status.requests_today + 1,
                requests_total=status.requests_total + 1,
                errors_today=status.errors_today + failed,
                errors_total=status.errors_total + failed,
                last_request_at=now,
                quota=quota,
                **changes,  # type: ignore[arg-type]
            )

        self._state.apply(count)

    def quota_changed(self, quota: Quota) -> None:
        def change(status: Status) -> Status:
            if status.last_error_kind == "quota":
                status = replace(status, last_error="", last_error_at=None, last_error_kind="")
            return replace(status, quota=quota)

        self._state.apply(change)

    def quota_failed(self, error: str) -> None:
        """The quota could not be read; shown only while no request error is more recent."""
        now = self._clock()

        def change(status: Status) -> Status:
            if status.last_error_kind not in ("", "quota"):
                return status
            return replace(status, last_error=error, last_error_at=now, last_error_kind="quota")

        self._state.apply(change)

    def token_changed(self, status: TokenStatus) -> None:
        self._state.update(token=status)


def _is_in_use(exc: OSError) -> bool:
    return exc.errno == errno.EADDRINUSE or getattr(exc, "winerror", None) in _IN_USE_WINERRORS


@dataclass
class _ServerRun:
    """One start of the server: a fresh uvicorn.Server (they cannot be restarted) and its thread."""

    server: uvicorn.Server
    address: str
    thread: threading.Thread = field(init=False)
    stopping: bool = False
    failure: str = ""


class ProxyService:
    """Start, stop and restart the local API server; own the token watcher and the health timer.

    `start()`/`stop()` may be called from any thread; they are serialised. Background parts (watcher,
    health timer) start with the first `start()` and end with `close()`.
    """

    def __init__(
        self,
        settings: Settings,
        state: AppState,
        *,
        app_factory: Callable[[Reporter], ASGIApp],
        token_reload: Callable[[], TokenStatus],
        graceful_timeout: float = 3.0,
        health_interval: float = 30.0,
        bind_retry: float = BIND_RETRY,
        clock: Callable[[], datetime] = local_now,
        usage: UsageStore | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self._app_factory = app_factory
        self._token_reload = token_reload
        self._graceful_timeout = graceful_timeout
        self._health_interval = health_interval
        self._bind_retry = bind_retry
        self._clock = clock
        self._usage = usage
        self._reporter = StateReporter(state, clock, usage)
        self._lock = threading.RLock()
        self._run: _ServerRun | None = None
        self._watchers: list[TokenFileWatcher] = []
        self._health_thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def reporter(self) -> Reporter:
        return self._reporter

    @property
    def is_running(self) -> bool:
        run = self._run
        return run is not None and run.thread.is_alive() and not run.stopping

    def start(self) -> bool:
        """Bind and serve; True once requests are accepted. On failure the phase is ERROR with a reason."""
        with self._lock:
            if self.is_running:
                return True
            self._start_background()
            self._server_ok(phase=Phase.STARTING)
            try:
                sock = self._bind()
            except OSError as exc:
                self._server_failed(self._bind_error(exc))
                log.warning("cannot listen on %s:%s: %s", self.settings.host, self.settings.port, exc)
                return False
            try:
                run = self._launch(sock)
            except Exception as exc:
                sock.close()
                log.exception("the server could not be created")
                self._server_failed(f"The server could not start: {exc}")
                return False
            deadline = time.monotonic() + START_TIMEOUT
            while not run.server.started and run.thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not run.server.started:
                reason = run.failure or "it did not become ready (see the log)"
                self._halt(run, timeout=2.0)
                self._server_failed(f"The server could not start: {reason}")
                return False
            self._run = run
            threading.Thread(target=self._monitor, args=(run,), name="ki2api-server-monitor", daemon=True).start()
            self._server_ok(phase=Phase.RUNNING, address=run.address)
            log.info("serving on http://%s", run.address)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving within about `timeout` + 2 s, even with streams open."""
        with self._lock:
            run, self._run = self._run, None
            if run is None:
                if self.state.snapshot().phase in (Phase.STARTING, Phase.RUNNING, Phase.STOPPING):
                    self.state.update(phase=Phase.STOPPED, address="")
                return
            self.state.update(phase=Phase.STOPPING)
            self._halt(run, timeout)
            self.state.update(phase=Phase.STOPPED, address="")
            log.info("server stopped")

    def restart(self) -> bool:
        with self._lock:
            self.stop()
            return self.start()

    def close(self) -> None:
        """Stop the server and every background thread (Quit, or the end of headless mode)."""
        self.stop()
        self._closed.set()
        with self._lock:
            watchers, self._watchers = self._watchers, []
            health, self._health_thread = self._health_thread, None
        for watcher in watchers:
            watcher.stop()
        if health is not None and health is not threading.current_thread():
            health.join(timeout=5.0)
        if self._usage is not None:
            self._usage.close()

    def reload_token(self) -> None:
        """Ask the token store for the current health and publish it (watcher, timer, and on demand)."""
        try:
            token = self._token_reload()
        except Exception as exc:
            log.exception("reading the token failed")
            token = TokenStatus(TokenHealth.UNREADABLE, detail=f"Could not read the token: {exc}")
        self.state.update(token=token)

    # --- internals --------------------------------------------------------------------------------------

    def _server_failed(self, message: str) -> None:
        self.state.update(
            phase=Phase.ERROR, address="", last_error=message, last_error_at=self._clock(), last_error_kind="server"
        )

    def _server_ok(self, **changes: object) -> None:
        """A new phase; a server error from before is over (other kinds of error stay on show)."""

        def change(status: Status) -> Status:
            if status.last_error_kind in ("", "server"):
                status = replace(status, last_error="", last_error_at=None, last_error_kind="")
            return replace(status, **changes)  # type: ignore[arg-type]

        self.state.apply(change)

    def _bind(self) -> socket.socket:
        """Bind the listening socket; a port in use is tried again for `bind_retry` seconds first."""
        deadline = time.monotonic() + self._bind_retry
        while True:
            try:
                return self._bind_once()
            except OSError as exc:
                if not _is_in_use(exc) or time.monotonic() >= deadline:
                    raise
                log.info("port %s is busy; trying again for up to %.0f s", self.settings.port, self._bind_retry)
                time.sleep(_BIND_RETRY_STEP)

    def _bind_once(self) -> socket.socket:
        host, port = self.settings.host, self.settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # asyncio sets TCP_NODELAY on accepted connections only when the listening socket's proto is
        # IPPROTO_TCP; with proto 0, Nagle + delayed ACK held every keep-alive response ~40 ms (benchmarks/).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            if sys.platform == "win32":
                # On Windows SO_REUSEADDR would let a second program bind the same port; ask for exclusivity.
                sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", -5), 1)
            else:
                # Same as asyncio: lets us rebind at once although closed streams left TIME_WAIT entries.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        return sock

    def _bind_error(self, exc: OSError) -> str:
        port = self.settings.port
        if _is_in_use(exc):
            return port_in_use_message(port)
        if exc.errno == errno.EACCES:
            return f"Port {port} needs administrator rights. Choose a port above 1024 in config.json."
        return f"Cannot listen on {self.settings.host}:{port}: {exc.strerror or exc}"

    def _launch(self, sock: socket.socket) -> _ServerRun:
        app = self._app_factory(self._reporter)
        config = uvicorn.Config(
            app,
            log_config=None,  # uvicorn's own logging config crashes windowed builds (sys.stdout is None)
            access_log=False,
            loop="asyncio",  # "auto" would pick whatever happens to be installed when the app is frozen
            http=_Connection,  # h11, with idle connections closed without TIME_WAIT
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=max(1, math.ceil(self._graceful_timeout)),
        )
        server = _Server(config)
        host, port = sock.getsockname()[:2]
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        run = _ServerRun(server=server, address=address)
        run.thread = threading.Thread(target=self._serve, args=(run, sock), name="ki2api-server", daemon=True)
        run.thread.start()
        return run

    def _serve(self, run: _ServerRun, sock: socket.socket) -> None:
        try:
            run.server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn ends a failed lifespan startup with sys.exit() in this thread
            run.failure = "the app's startup failed" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
            log.error("server thread ended with %s", run.failure, exc_info=not isinstance(exc, SystemExit))
        finally:
            sock.close()

    def _halt(self, run: _ServerRun, timeout: float) -> None:
        run.stopping = True
        run.server.should_exit = True
        run.thread.join(timeout)
        if run.thread.is_alive():
            # Open streams keep a graceful shutdown waiting; Quit must not hang on them.
            run.server.force_exit = True
            run.thread.join(2.0)
        if run.thread.is_alive():
            log.error("the server thread did not stop")

    def _monitor(self, run: _ServerRun) -> None:
        """Notice a server thread that ended without being asked to."""
        run.thread.join()
        if run.stopping:
            return
        reason = run.failure or "the server thread ended"
        log.error("server stopped unexpectedly: %s", reason)
        self._server_failed(f"The server stopped unexpectedly: {reason}")

    def _start_background(self) -> None:
        if self._closed.is_set() or self._health_thread is not None:
            return
        self.reload_token()
        # Watched even with a token in the environment: that seed is used only while the file is missing.
        self._watchers = [TokenFileWatcher(self.settings.token_file, self.reload_token)]
        if "kiro_cli" in self.settings.source_order:
            # kiro-cli's database is followed like the token file; sqlite writes land in its -wal first.
            db = self.settings.kiro_cli_db
            self._watchers.append(TokenFileWatcher(db, self.reload_token, companions=(f"{db.name}-wal",)))
        for watcher in self._watchers:
            watcher.start()
        self._health_thread = threading.Thread(target=self._health_loop, name="ki2api-health", daemon=True)
        self._health_thread.start()

    def _health_loop(self) -> None:
        """Token expiry moves with the clock, not with the file; so do the "today" counters."""
        while not self._closed.wait(self._health_interval):
            self.reload_token()
            self.state.apply(functools.partial(_rolled_over, today=self._clock().date().isoformat()))


# --- one-click client set-up (the tray's "Set up a client"): the file side of core/client_config.py ------------


class ClientFiles:
    """Plans for a client's config file, written only on `apply` with a backup next to it, and undone on request.

    A note per client in ki2api's state folder remembers the backup, so undo puts the old file back (or
    removes the file when there was none) and refuses when the person edited the file since.
    """

    def __init__(self, state_dir: Path, home: Path | None = None) -> None:
        self._state_dir = state_dir
        self._home = home

    def plan(self, client: str, base_url: str, api_key: str) -> Plan:
        folder, name = CLIENT_FILES[client]
        path = (self._home or Path.home()) / folder / name
        before = _read(path)
        if client == "codex":
            _check_toml(path, before or "")
        plan = plan_for(client, path, before, base_url, api_key)
        if client == "codex":
            _check_toml(path, plan.after)
        return plan

    def apply(self, plan: Plan, now: datetime | None = None) -> Path | None:
        """Write `plan`; the backup of the old file, or None when there was none. Refused if the file changed."""
        if _read(plan.path) != plan.before:
            raise SetupError(f"{plan.path} changed since the preview; look at the changes again before applying.")
        backup: Path | None = None
        if plan.before is not None:
            stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
            backup = plan.path.with_name(f"{plan.path.name}.ki2api-backup-{stamp}")
            backup.write_text(plan.before, encoding="utf-8")
        _atomic_write(plan.path, plan.after)
        record = {"path": str(plan.path), "backup": str(backup) if backup else None, "written": plan.after}
        _atomic_write(self._note(plan.client), json.dumps(record))
        return backup

    def can_undo(self, client: str) -> bool:
        return self._note(client).is_file()

    def undo(self, client: str) -> Path:
        note = self._note(client)
        try:
            record: dict[str, Any] = json.loads(note.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raise SetupError(f"There is no ki2api change to undo for {client}.") from None
        path = Path(str(record["path"]))
        if _read(path) != record.get("written"):
            raise SetupError(f"{path} was edited after ki2api wrote it; undoing would lose those edits.")
        if record.get("backup"):
            _atomic_write(path, Path(str(record["backup"])).read_text(encoding="utf-8"))
        else:
            path.unlink(missing_ok=True)
        note.unlink()
        return path

    def _note(self, client: str) -> Path:
        return self._state_dir / f"client-setup-{client}.json"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _check_toml(path: Path, text: str) -> None:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"{path} is not valid TOML ({exc}); fix or move it, then try again.") from None


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise

"""ProxyService with real sockets: start, stop, restart, port in use, open streams, crashes, the reporter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from ki2api_tray.config import Settings
from ki2api_tray.service import ProxyService, StateReporter
from ki2api_tray.state import AppState, Phase, Quota, Reporter, Status, TokenHealth, TokenStatus


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_app(reporter: Reporter) -> ASGIApp:
    async def hello(request: Request) -> PlainTextResponse:
        reporter.request_finished(ok=True)
        return PlainTextResponse("hello")

    async def stream(request: Request) -> StreamingResponse:
        async def ticks() -> AsyncIterator[bytes]:
            while True:  # like a long completion: never ends by itself
                yield b"data: tick\n\n"
                await asyncio.sleep(0.05)

        return StreamingResponse(ticks(), media_type="text/event-stream")

    return Starlette(routes=[Route("/", hello), Route("/stream", stream)])


def valid_token() -> TokenStatus:
    return TokenStatus(TokenHealth.VALID, datetime.now(timezone.utc) + timedelta(hours=1))


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., ProxyService]]:
    services: list[ProxyService] = []

    def build(
        port: int = 0,
        app_factory: Callable[[Reporter], ASGIApp] = make_app,
        token_reload: Callable[[], TokenStatus] = valid_token,
        **kwargs: object,
    ) -> ProxyService:
        settings = Settings(port=port, token_file=tmp_path / "aws" / "kiro-auth-token.json")
        service = ProxyService(
            settings, AppState(), app_factory=app_factory, token_reload=token_reload, graceful_timeout=1, **kwargs
        )
        services.append(service)
        return service

    yield build
    for service in services:
        service.close()


def get(address: str, path: str = "/") -> httpx.Response:
    return httpx.get(f"http://{address}{path}", timeout=5, trust_env=False)


def test_service_start_serves_and_reports_running(make_service: Callable[..., ProxyService]) -> None:
    service = make_service()
    assert service.start()
    status = service.state.snapshot()
    assert status.phase is Phase.RUNNING
    assert status.address.startswith("127.0.0.1:")
    assert status.token.health is TokenHealth.VALID
    response = get(status.address)
    assert response.text == "hello"
    assert service.state.snapshot().requests_today == 1


def test_service_start_on_the_configured_port_shows_it(make_service: Callable[..., ProxyService]) -> None:
    port = free_port()
    service = make_service(port=port)
    assert service.start()
    assert service.state.snapshot().address == f"127.0.0.1:{port}"


def test_service_stop_then_start_again_on_the_same_port(make_service: Callable[..., ProxyService]) -> None:
    port = free_port()
    service = make_service(port=port)
    assert service.start()
    assert get(f"127.0.0.1:{port}").status_code == 200
    service.stop()
    assert service.state.snapshot().phase is Phase.STOPPED
    assert service.state.snapshot().address == ""
    with pytest.raises(httpx.ConnectError):
        get(f"127.0.0.1:{port}")
    assert service.start()
    assert get(f"127.0.0.1:{port}").text == "hello"


def exclusive_bind_works(port: int) -> bool:
    """Bind like Windows' SO_EXCLUSIVEADDRUSE judges it: without SO_REUSEADDR, Linux refuses a port that any
    connection still holds, TIME_WAIT included, so this sees what would say "port in use" on Windows."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_service_stop_right_after_requests_leaves_nothing_holding_the_port(
    make_service: Callable[..., ProxyService],
) -> None:
    port = free_port()
    service = make_service(port=port)
    assert service.start()
    with httpx.Client(trust_env=False, timeout=5) as client:  # keep-alive, as every API client does
        for _ in range(3):
            assert client.get(f"http://127.0.0.1:{port}/").text == "hello"
        service.stop()
        assert exclusive_bind_works(port)
    assert service.start()
    assert get(f"127.0.0.1:{port}").text == "hello"


def test_service_stop_cutting_an_open_stream_leaves_nothing_holding_the_port(
    make_service: Callable[..., ProxyService],
) -> None:
    port = free_port()
    service = make_service(port=port)
    assert service.start()
    first_chunk = threading.Event()

    def read_stream() -> None:
        with contextlib.suppress(httpx.HTTPError):
            with httpx.stream("GET", f"http://127.0.0.1:{port}/stream", timeout=30, trust_env=False) as response:
                for _ in response.iter_bytes():
                    first_chunk.set()

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    assert first_chunk.wait(5)
    service.stop(timeout=1.0)  # the stream outlives the grace period and is cut off
    reader.join(timeout=5)

    assert exclusive_bind_works(port)


def test_service_start_waits_briefly_for_a_port_that_is_being_released(
    make_service: Callable[..., ProxyService],
) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    port = squatter.getsockname()[1]
    threading.Timer(0.4, squatter.close).start()  # the previous run, still closing
    service = make_service(port=port, bind_retry=10.0)

    assert service.start()
    assert get(f"127.0.0.1:{port}").text == "hello"


def test_service_restart_keeps_serving(make_service: Callable[..., ProxyService]) -> None:
    port = free_port()
    service = make_service(port=port)
    assert service.start()
    assert service.restart()
    assert service.state.snapshot().phase is Phase.RUNNING
    assert get(f"127.0.0.1:{port}").text == "hello"


def test_service_start_twice_is_harmless(make_service: Callable[..., ProxyService]) -> None:
    service = make_service()
    assert service.start()
    address = service.state.snapshot().address
    assert service.start()
    assert service.state.snapshot().address == address


def test_service_port_in_use_is_an_error_state(make_service: Callable[..., ProxyService]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        service = make_service(port=port, bind_retry=0.3)
        assert not service.start()
        status = service.state.snapshot()
        assert status.phase is Phase.ERROR
        assert status.last_error == (
            f"Port {port} is already in use — another ki2api or program is using it. "
            "Quit it or change the port in config.json."
        )
    # Once the other program is gone, Start works.
    assert service.start()
    assert service.state.snapshot().phase is Phase.RUNNING


def test_service_stop_with_an_open_stream_finishes_within_seconds(make_service: Callable[..., ProxyService]) -> None:
    service = make_service()
    assert service.start()
    address = service.state.snapshot().address
    first_chunk = threading.Event()
    client_error: list[BaseException] = []

    def read_stream() -> None:
        try:
            with httpx.stream("GET", f"http://{address}/stream", timeout=30, trust_env=False) as response:
                for _ in response.iter_bytes():
                    first_chunk.set()
        except httpx.HTTPError as exc:
            client_error.append(exc)

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    assert first_chunk.wait(5)
    began = time.monotonic()
    service.stop(timeout=5.0)
    elapsed = time.monotonic() - began
    assert service.state.snapshot().phase is Phase.STOPPED
    assert elapsed < 4.5, f"stop took {elapsed:.1f} s with a stream open"
    reader.join(timeout=5)
    assert not reader.is_alive()


def test_service_notices_a_server_that_stops_by_itself(make_service: Callable[..., ProxyService]) -> None:
    service = make_service()
    assert service.start()
    run = service._run
    assert run is not None
    run.server.should_exit = True  # the server ends without the service asking: as good as a crash
    wait_for(lambda: service.state.snapshot().phase is Phase.ERROR)
    assert service.state.snapshot().last_error.startswith("The server stopped unexpectedly")
    assert service.start()  # and it can be started again
    assert service.state.snapshot().phase is Phase.RUNNING


def test_service_failed_app_startup_is_an_error_state(make_service: Callable[..., ProxyService]) -> None:
    @contextlib.asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("database is gone")
        yield

    service = make_service(app_factory=lambda reporter: Starlette(lifespan=broken))
    assert not service.start()
    status = service.state.snapshot()
    assert status.phase is Phase.ERROR
    assert status.last_error.startswith("The server could not start")


def test_service_app_factory_error_is_an_error_state(make_service: Callable[..., ProxyService]) -> None:
    def explode(reporter: Reporter) -> ASGIApp:
        raise ValueError("bad settings")

    service = make_service(app_factory=explode)
    assert not service.start()
    assert service.state.snapshot().last_error == "The server could not start: bad settings"


def test_service_token_file_change_reloads_the_token(make_service: Callable[..., ProxyService], tmp_path: Path) -> None:
    token_file = tmp_path / "aws" / "kiro-auth-token.json"

    def reload_from_file() -> TokenStatus:
        return TokenStatus(TokenHealth.VALID if token_file.exists() else TokenHealth.MISSING)

    service = make_service(token_reload=reload_from_file)
    assert service.start()
    assert service.state.snapshot().token.health is TokenHealth.MISSING
    token_file.parent.mkdir(parents=True)
    token_file.write_text(json.dumps({"accessToken": "x"}))
    wait_for(lambda: service.state.snapshot().token.health is TokenHealth.VALID)
    token_file.unlink()
    wait_for(lambda: service.state.snapshot().token.health is TokenHealth.MISSING)


def test_service_health_timer_reevaluates_the_token(make_service: Callable[..., ProxyService]) -> None:
    calls: list[int] = []

    def reload() -> TokenStatus:
        calls.append(1)
        return TokenStatus(TokenHealth.EXPIRING if len(calls) > 2 else TokenHealth.VALID)

    service = make_service(token_reload=reload, health_interval=0.05)
    assert service.start()
    wait_for(lambda: service.state.snapshot().token.health is TokenHealth.EXPIRING)


def test_service_token_reload_failure_shows_unreadable(make_service: Callable[..., ProxyService]) -> None:
    def reload() -> TokenStatus:
        raise OSError("permission denied")

    service = make_service(token_reload=reload)
    assert service.start()
    token = service.state.snapshot().token
    assert token.health is TokenHealth.UNREADABLE
    assert "permission denied" in token.detail


def test_service_close_ends_background_threads(make_service: Callable[..., ProxyService]) -> None:
    service = make_service()
    assert service.start()
    names = {"ki2api-server", "ki2api-health", "ki2api-token-watcher"}
    assert names <= {t.name for t in threading.enumerate()}
    service.close()
    wait_for(lambda: not names & {t.name for t in threading.enumerate()})
    assert service.state.snapshot().phase is Phase.STOPPED


def test_service_stop_when_never_started_is_harmless(make_service: Callable[..., ProxyService]) -> None:
    service = make_service()
    service.stop()
    assert service.state.snapshot().phase is Phase.STOPPED


# --- the reporter ------------------------------------------------------------------------------------------


def test_reporter_counts_requests_and_errors() -> None:
    state = AppState()
    moment = datetime(2026, 11, 30, 9, 30).astimezone()
    reporter = StateReporter(state, clock=lambda: moment)
    reporter.request_finished(ok=True)
    reporter.request_finished(ok=False, error="Kiro said 429: too many requests")
    status = state.snapshot()
    assert (status.requests_today, status.errors_today, status.requests_total, status.errors_total) == (2, 1, 2, 1)
    assert status.last_request_at == moment
    assert status.last_error == "Kiro said 429: too many requests"
    assert status.counts_date == "2026-11-30"


def test_reporter_today_counters_reset_at_local_midnight() -> None:
    clock = [datetime(2026, 11, 30, 23, 59).astimezone()]
    state = AppState()
    reporter = StateReporter(state, clock=lambda: clock[0])
    reporter.request_finished(ok=False, error="x")
    clock[0] = datetime(2026, 12, 1, 0, 1).astimezone()
    reporter.request_finished(ok=True)
    status = state.snapshot()
    assert (status.requests_today, status.errors_today) == (1, 0)
    assert (status.requests_total, status.errors_total) == (2, 1)


def test_service_health_timer_resets_counters_after_midnight(make_service: Callable[..., ProxyService]) -> None:
    clock = [datetime(2026, 11, 30, 23, 59).astimezone()]
    service = make_service(health_interval=0.05, clock=lambda: clock[0])
    service.reporter.request_finished(ok=True)
    assert service.start()
    assert service.state.snapshot().requests_today == 1
    clock[0] = datetime(2026, 12, 1, 0, 1).astimezone()
    wait_for(lambda: service.state.snapshot().requests_today == 0)
    assert service.state.snapshot().requests_total == 1


def test_reporter_quota_and_token() -> None:
    state = AppState()
    reporter = StateReporter(state)
    reporter.quota_changed(Quota("KIRO PRO", used=10, limit=1000))
    reporter.token_changed(TokenStatus(TokenHealth.REFRESH_FAILED))
    status = state.snapshot()
    assert status.quota == Quota("KIRO PRO", used=10, limit=1000)
    assert status.token.health is TokenHealth.REFRESH_FAILED


def test_reporter_notifies_subscribers_once_per_change() -> None:
    state = AppState()
    seen: list[Status] = []
    state.subscribe(seen.append)
    StateReporter(state).request_finished(ok=True)
    assert len(seen) == 1


# --- windowed builds ------------------------------------------------------------------------------------------


def test_service_works_without_stdout_and_stderr(tmp_path: Path) -> None:
    """PyInstaller windowed builds start with sys.stdout/sys.stderr None (tray-and-packaging.md §2.5)."""
    result = tmp_path / "result.json"
    code = textwrap.dedent(
        f"""
        import json, sys, urllib.request
        from pathlib import Path
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route
        from ki2api_tray.config import Settings
        from ki2api_tray.service import ProxyService
        from ki2api_tray.state import AppState, TokenHealth, TokenStatus

        streams_none = sys.stdout is None and sys.stderr is None

        def app_factory(reporter):
            async def hello(request):
                reporter.request_finished(ok=True)
                return PlainTextResponse("hello")
            return Starlette(routes=[Route("/", hello)])

        state = AppState()
        settings = Settings(port=0, token_file=Path({str(tmp_path / "token.json")!r}))
        service = ProxyService(settings, state, app_factory=app_factory,
                               token_reload=lambda: TokenStatus(TokenHealth.MISSING))
        started = service.start()
        body = urllib.request.urlopen("http://" + state.snapshot().address + "/", timeout=10).read().decode()
        service.close()
        Path({str(result)!r}).write_text(json.dumps(
            {{"streams_none": streams_none, "started": started, "body": body,
              "requests": state.snapshot().requests_today}}))
        """
    )
    # `1>&- 2>&-` closes the descriptors, so CPython starts with sys.stdout = sys.stderr = None.
    completed = subprocess.run(
        ["sh", "-c", 'exec "$0" -c "$1" 1>&- 2>&-', sys.executable, code], timeout=60, check=False
    )
    assert completed.returncode == 0
    assert json.loads(result.read_text()) == {"streams_none": True, "started": True, "body": "hello", "requests": 1}

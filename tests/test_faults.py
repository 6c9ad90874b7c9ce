"""Faults between ki2api, Kiro, the token file and the client, against the fake Kiro over real sockets.

Every test asks what the person at the client would see: a stream that ends with an error in the API's
own shape (never a hang or a silent cut), an upstream request that stops when nobody listens any more,
timeouts with a message that says what to change, and no request lost to a token file being rewritten.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from tests.fake_kiro import StreamReply, scenarios, write_token_file
from tests.fake_kiro.replies import frame_bytes
from tests.fixtures_kiro import KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

MODEL = "claude-sonnet-4.5"
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
# Generous bounds for "did it happen at all"; the real figures are milliseconds.
DEADLINE = 10.0
CLIENT_TIMEOUT = httpx.Timeout(30.0)


# ---- helpers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sse:
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def read_sse(response: httpx.Response) -> list[Sse]:
    """Every server-sent event until the server ends the body (keep-alive comments dropped)."""
    events: list[Sse] = []
    name, data = "", []
    for line in response.iter_lines():
        if line == "":
            if data:
                events.append(Sse(name, "\n".join(data)))
            name, data = "", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        events.append(Sse(name, "\n".join(data)))
    return events


def wait_until(condition: Callable[[], bool], deadline: float = DEADLINE) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def openai_body(content: str, stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": stream}


def anthropic_body(content: str, stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": content}], "stream": stream}


@dataclass(frozen=True)
class Api:
    """One client protocol: where to post, how to shape a body, and how its stream is read back."""

    name: str
    path: str
    body: Callable[[str, bool], dict[str, Any]]

    def text_of(self, events: list[Sse]) -> str:
        if self.name == "openai":
            chunks = [e.json() for e in events if e.data != "[DONE]" and "choices" in e.json()]
            return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        deltas = [e.json()["delta"] for e in events if e.event == "content_block_delta"]
        return "".join(d.get("text", "") for d in deltas)

    def stream_error(self, events: list[Sse]) -> dict[str, Any] | None:
        """The in-stream error in this API's shape, or None; it must be the last event."""
        if not events:
            return None
        last = events[-1]
        if self.name == "openai":
            body = last.json() if last.data != "[DONE]" else {}
            return body.get("error") if isinstance(body, dict) else None
        if last.event != "error":
            return None
        body = last.json()
        assert body["type"] == "error"
        return body["error"]  # type: ignore[no-any-return]

    def is_complete(self, events: list[Sse]) -> bool:
        if self.name == "openai":
            return bool(events) and events[-1].data == "[DONE]"
        return bool(events) and events[-1].event == "message_stop"

    def error_of(self, response: httpx.Response) -> dict[str, Any]:
        """The error object of a non-200 answer, checked to be in this API's shape."""
        body = response.json()
        if self.name == "anthropic":
            assert body["type"] == "error"
        error = body["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str)
        return error  # type: ignore[no-any-return]


OPENAI = Api("openai", "/v1/chat/completions", openai_body)
ANTHROPIC = Api("anthropic", "/v1/messages", anthropic_body)
APIS = [pytest.param(OPENAI, id="openai"), pytest.param(ANTHROPIC, id="anthropic")]


def stream(proxy: Proxy, api: Api, content: str) -> tuple[int, list[Sse]]:
    """The status and, for a 200, every event of a streamed request."""
    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=CLIENT_TIMEOUT) as client:
        with client.stream("POST", api.path, json=api.body(content, True)) as response:
            if response.status_code != 200:
                return response.status_code, []
            return 200, read_sse(response)


def post(proxy: Proxy, api: Api, content: str, *, stream: bool = False) -> httpx.Response:
    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=CLIENT_TIMEOUT) as client:
        return client.post(api.path, json=api.body(content, stream))


def echo_reply(text: str, **options: Any) -> StreamReply:
    return StreamReply([*scenarios.text(*scenarios.pieces(text)), *scenarios.usage()], **options)


@pytest.fixture
def quick_proxy(kiro_env: KiroEnv) -> Iterator[Proxy]:
    """A proxy with half-second timeouts and no retries, so timeout faults show within the test budget."""
    runtime = start_proxy(kiro_env, first_byte_timeout=0.5, idle_timeout=0.5, max_retries=0)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    finally:
        runtime.service.close()


# ---- upstream drops mid-stream ------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_stream_upstream_drop_ends_with_error_event(proxy: Proxy, api: Api) -> None:
    proxy.kiro.fake.script(echo_reply("Echo: the first half arrives and then Kiro hangs up", disconnect_after_frames=3))

    status, events = stream(proxy, api, "hello")

    assert status == 200
    assert api.text_of(events).startswith("Echo: the first half ar")
    error = api.stream_error(events)
    assert error is not None, f"stream ended without an error event: {events[-1:]}"
    assert "connection to Kiro broke" in error["message"]
    assert not api.is_complete(events)


@pytest.mark.parametrize("api", APIS)
def test_nonstream_upstream_drop_is_an_error_response(proxy: Proxy, api: Api) -> None:
    proxy.kiro.fake.script(echo_reply("Echo: cut short by the network", disconnect_after_frames=2))

    response = post(proxy, api, "hello")

    assert response.status_code in (502, 503)
    assert "connection to Kiro broke" in api.error_of(response)["message"]


def test_stream_upstream_drop_raises_in_openai_sdk(proxy: Proxy) -> None:
    proxy.kiro.fake.script(echo_reply("Echo: half of this arrives", disconnect_after_frames=2))
    client = proxy.openai(timeout=30)

    received: list[str] = []
    with pytest.raises(openai.APIError, match="connection to Kiro broke"):
        for chunk in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.extend(choice.delta.content or "" for choice in chunk.choices)

    assert "".join(received).startswith("Echo: ")


def test_stream_upstream_drop_raises_in_anthropic_sdk(proxy: Proxy) -> None:
    proxy.kiro.fake.script(echo_reply("Echo: half of this arrives", disconnect_after_frames=2))
    client = proxy.anthropic(timeout=30)

    with pytest.raises(anthropic.APIError, match="connection to Kiro broke"):
        with client.messages.stream(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "x"}]) as s:
            for _ in s:
                pass


# ---- the client goes away --------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "nonstream"])
def test_client_disconnect_mid_answer_cancels_upstream(proxy: Proxy, api: Api, streaming: bool) -> None:
    fake = proxy.kiro.fake
    # One frame, then Kiro would think for a minute: only a cancelled upstream request ends that early.
    fake.script(echo_reply("Echo: a long answer that nobody waits for", pause=(1, 60.0)))

    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=httpx.Timeout(30.0, read=1.0)) as client:
        if streaming:
            with client.stream("POST", api.path, json=api.body("hi", True)) as response:
                assert response.status_code == 200
                next(response.iter_bytes())
        else:
            with pytest.raises(httpx.ReadTimeout):
                client.post(api.path, json=api.body("hi", False))

    # The issue asks for "within a second"; the bound here only says whether it happened at all.
    assert wait_until(lambda: fake.aborted_streams == 1, deadline=3.0)
    assert wait_until(lambda: proxy.runtime.state.snapshot().requests_total == 1)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "nonstream"])
def test_client_disconnect_before_first_byte_cancels_upstream(proxy: Proxy, api: Api, streaming: bool) -> None:
    fake = proxy.kiro.fake
    fake.script(echo_reply("Echo: pausing before the first byte", pause=(0, 60.0)))

    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=httpx.Timeout(30.0, read=0.5)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(api.path, json=api.body("hi", streaming))

    assert wait_until(lambda: fake.aborted_streams == 1, deadline=3.0)
    assert wait_until(lambda: proxy.runtime.state.snapshot().requests_total == 1)


# ---- timeouts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "nonstream"])
def test_slow_first_byte_is_a_timeout_that_names_the_setting(quick_proxy: Proxy, api: Api, streaming: bool) -> None:
    response = post(quick_proxy, api, "hi [[fake:slow:5]]", stream=streaming)

    assert response.status_code == 504
    message = api.error_of(response)["message"]
    assert "did not start answering within 0.5 s" in message
    assert "KI2API_FIRST_BYTE_TIMEOUT" in message


def test_slow_first_byte_is_not_retried(kiro_env: KiroEnv) -> None:
    # Retrying would make the person wait (retries + 1) x the timeout for the same answer.
    runtime = start_proxy(kiro_env, first_byte_timeout=0.5, max_retries=3)
    try:
        response = post(
            Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env), OPENAI, "[[fake:slow:3]]"
        )
    finally:
        runtime.service.close()

    assert response.status_code == 504
    assert len(kiro_env.fake.chat_requests()) == 1


@pytest.mark.parametrize("api", APIS)
def test_long_pause_mid_stream_ends_with_timeout_event(quick_proxy: Proxy, api: Api) -> None:
    status, events = stream(quick_proxy, api, "hi [[fake:pause:5]]")

    assert status == 200
    assert api.text_of(events).startswith("Echo")
    error = api.stream_error(events)
    assert error is not None
    assert "went silent for 0.5 s" in error["message"]
    assert "KI2API_IDLE_TIMEOUT" in error["message"]


@pytest.mark.parametrize("api", APIS)
def test_long_pause_nonstream_is_a_timeout_response(quick_proxy: Proxy, api: Api) -> None:
    response = post(quick_proxy, api, "hi [[fake:pause:5]]")

    assert response.status_code == 504
    assert "went silent for 0.5 s" in api.error_of(response)["message"]


# ---- corrupt event streams ----------------------------------------------------------------------------------

_VALID = echo_reply("Echo: intact text before the damage")
CORRUPTIONS = {
    "bad-crc": echo_reply("Echo: intact text before the damage", corrupt_frame=3),
    "garbage": StreamReply(_VALID.events[:3], raw_tail=b"this is not an event stream at all, just text\r\n" * 4),
    "truncated-tail": StreamReply(_VALID.events[:3], raw_tail=frame_bytes(_VALID.events[3])[:-7]),
    "huge-length": StreamReply(_VALID.events[:3], raw_tail=b"\xff\xff\xff\xff" + b"\x00" * 12),
}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("reply", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupt_stream_ends_cleanly_with_error_event(proxy: Proxy, api: Api, reply: StreamReply) -> None:
    proxy.kiro.fake.script(reply)

    status, events = stream(proxy, api, "hi")

    assert status == 200
    assert api.text_of(events).startswith("Echo: intact text before")
    error = api.stream_error(events)
    assert error is not None
    assert "Kiro's event stream" in error["message"]
    assert wait_until(lambda: proxy.runtime.state.snapshot().errors_total == 1)


@pytest.mark.parametrize("api", APIS)
def test_corrupt_first_frame_is_an_error_response(proxy: Proxy, api: Api) -> None:
    proxy.kiro.fake.script(echo_reply("Echo: nothing good", corrupt_frame=0))

    response = post(proxy, api, "hi", stream=True)

    assert response.status_code == 502
    assert "corrupt" in api.error_of(response)["message"]


# ---- the token file changes under running streams ------------------------------------------------------------


def _truncate(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def _replace_atomically(kiro: KiroEnv) -> str:
    """Kiro refreshed its login: new tokens, file swapped by rename. Returns the new access token."""
    account = kiro.fake.accounts.refresh_social(kiro.account.refresh_token)
    assert account is not None
    staging = kiro.home / "staging"
    staging.mkdir(exist_ok=True)
    written = write_token_file(staging, account)
    written.replace(kiro.token_file)
    return account.access_token


def test_token_file_churn_under_32_streams_loses_no_request(proxy: Proxy) -> None:
    kiro, fake, tokens = proxy.kiro, proxy.kiro.fake, proxy.runtime.tokens
    words = 6
    # Every stream stalls for a moment after its first frame, so the file changes while all are open.
    content = f"[[fake:long:{words}]] [[fake:pause:1.0]]"
    first_chunks = threading.Semaphore(0)

    def one_stream(index: int) -> str:
        with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=CLIENT_TIMEOUT) as client:
            with client.stream("POST", OPENAI.path, json=OPENAI.body(f"{index} {content}", True)) as response:
                assert response.status_code == 200, response.read()
                lines = response.iter_lines()
                collected = [next(lines)]
                first_chunks.release()
                collected.extend(lines)
        events = [Sse("", line[5:].strip()) for line in collected if line.startswith("data:")]
        assert OPENAI.is_complete(events), events[-1:]
        return OPENAI.text_of(events)

    with ThreadPoolExecutor(max_workers=48) as pool:
        first_half = [pool.submit(one_stream, i) for i in range(16)]
        for _ in range(16):
            assert first_chunks.acquire(timeout=DEADLINE)
        _truncate(kiro.token_file)
        tokens.reload()  # what the watcher does a moment later; done here so the next step surely sees it
        # Requests that arrive while the file is half-written still use the last good login.
        second_half = [pool.submit(one_stream, i) for i in range(16, 32)]
        for _ in range(16):
            assert first_chunks.acquire(timeout=DEADLINE)
        kiro.token_file.unlink()
        tokens.reload()
        new_token = _replace_atomically(kiro)
        texts = [f.result(timeout=30) for f in first_half + second_half]

    expected = "".join(f"word{i} " for i in range(words))
    assert texts == [expected] * 32
    status = proxy.runtime.state.snapshot()
    assert (status.requests_total, status.errors_total) == (32, 0)

    # The replaced login is picked up for the next request.
    def next_request_uses_new_token() -> bool:
        assert post(proxy, OPENAI, "after").status_code == 200
        return fake.chat_requests()[-1].headers["authorization"] == f"Bearer {new_token}"

    assert wait_until(next_request_uses_new_token)


# ---- the login service is down ---------------------------------------------------------------------------------


@pytest.fixture
def expired_env(kiro_env: KiroEnv) -> KiroEnv:
    write_token_file(kiro_env.home, kiro_env.account, expires_in=-60)
    kiro_env.fake.accounts.expire_access_tokens(kiro_env.account)
    return kiro_env


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [500, 503])
def test_refresh_endpoint_down_says_so_backs_off_and_retries(expired_env: KiroEnv, api: Api, status: int) -> None:
    fake = expired_env.fake
    fake.fail_next("/refreshToken", status, {"message": "down for maintenance"}, times=100)
    runtime = start_proxy(expired_env)
    proxy = Proxy(runtime, f"http://{runtime.state.snapshot().address}", expired_env)
    try:
        failed = post(proxy, api, "first")
        waiting = [post(proxy, api, f"again {n}") for n in range(5)]
        health = httpx.get(f"{proxy.url}/health", timeout=5).json()
        attempts = fake.refresh_count
        fake.stop_failing("/refreshToken")
        retried = post(proxy, api, "second")
        deadline = time.monotonic() + 15
        while retried.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)  # the backoff is a few seconds; requests meanwhile do not reach the service
            retried = post(proxy, api, "second")
        health_after = httpx.get(f"{proxy.url}/health", timeout=5).json()
    finally:
        runtime.service.close()

    assert failed.status_code == 503
    message = api.error_of(failed)["message"]
    assert "login service" in message and "refresh" in message and f"HTTP {status}" in message
    assert [w.status_code for w in waiting] == [503] * 5
    assert all(1 <= int(w.headers["retry-after"]) <= 3 for w in waiting)
    assert "tries again in" in api.error_of(waiting[0])["message"]
    assert attempts == 1  # one refresh in flight, then a backoff: not one refresh per request
    assert health["token"]["health"] == "refresh_failed"
    assert retried.status_code == 200, retried.text
    assert fake.accounts.refresh_count == 1
    assert health_after["token"]["health"] == "valid"


def test_refresh_endpoint_unreachable_says_so(expired_env: KiroEnv, unused_port: int) -> None:
    runtime = start_proxy(expired_env, auth_url=f"http://127.0.0.1:{unused_port}")
    proxy = Proxy(runtime, f"http://{runtime.state.snapshot().address}", expired_env)
    try:
        response = post(proxy, OPENAI, "hi")
    finally:
        runtime.service.close()

    assert response.status_code == 503
    message = OPENAI.error_of(response)["message"]
    assert "Could not reach Kiro's login service" in message
    assert "will retry on the next request" in message or "tries again in" in message  # the first try or the backoff


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- restart from the tray while clients are connected ------------------------------------------------------


def _stream_in_thread(url: str, api: Api, content: str) -> tuple[threading.Thread, threading.Event, dict[str, Any]]:
    """Open a stream from another thread; the event is set once the first chunk has arrived."""
    outcome: dict[str, Any] = {}
    opened = threading.Event()

    def client() -> None:
        try:
            with httpx.Client(base_url=url, headers=AUTH, timeout=CLIENT_TIMEOUT) as http:
                with http.stream("POST", api.path, json=api.body(content, True)) as response:
                    outcome["status"] = response.status_code
                    chunks = response.iter_bytes()
                    received = [next(chunks)]
                    opened.set()
                    received.extend(chunks)
                    outcome["body"] = b"".join(received).decode()
        except httpx.HTTPError as exc:
            outcome["error"] = exc
        finally:
            opened.set()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    return thread, opened, outcome


def _sse_of(body: str) -> list[Sse]:
    return read_sse(httpx.Response(200, content=body.encode()))


@pytest.mark.parametrize("api", APIS)
def test_restart_with_open_stream_ends_it_with_error_event(
    proxy: Proxy, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    fake, service = proxy.kiro.fake, proxy.runtime.service
    fake.script(echo_reply("Echo: this answer is interrupted by a restart", pause=(1, 60.0)))
    reader, opened, outcome = _stream_in_thread(proxy.url, api, "hi")
    assert opened.wait(DEADLINE)

    assert service.restart()
    reader.join(DEADLINE)

    assert not reader.is_alive(), "the client still hangs after the restart"
    assert outcome["status"] == 200, outcome
    events = _sse_of(outcome["body"])
    error = api.stream_error(events)
    assert error is not None, events[-2:]
    assert "ki2api is stopping or restarting" in error["message"]
    assert wait_until(lambda: fake.aborted_streams == 1)
    # The open stream did not make uvicorn give up and cancel it (that is logged as a crash).
    assert not [r for r in caplog.records if r.levelname == "ERROR"]

    restarted = Proxy(proxy.runtime, f"http://{proxy.runtime.state.snapshot().address}", proxy.kiro)
    assert post(restarted, api, "after the restart").status_code == 200


@pytest.mark.parametrize("api", APIS)
def test_restart_while_waiting_for_kiro_answers_503(proxy: Proxy, api: Api, caplog: pytest.LogCaptureFixture) -> None:
    fake, service = proxy.kiro.fake, proxy.runtime.service
    fake.script(echo_reply("Echo: Kiro is still thinking", pause=(0, 60.0)))
    results: dict[str, httpx.Response] = {}
    waiting = threading.Thread(target=lambda: results.setdefault("r", post(proxy, api, "hi")), daemon=True)
    waiting.start()
    assert wait_until(lambda: len(fake.chat_requests()) == 1)

    assert service.restart()
    waiting.join(DEADLINE)

    response = results["r"]
    assert response.status_code == 503
    assert "ki2api is stopping or restarting" in api.error_of(response)["message"]
    assert wait_until(lambda: fake.aborted_streams == 1)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]

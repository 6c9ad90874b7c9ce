"""Hostile input: whatever a client (or a broken Kiro) sends, ki2api answers with a 4xx or a clean stream.

HTTP cases run against the live server in front of the fake Kiro; property-based cases push random
requests and random event streams through the whole translation chain (client JSON -> ChatRequest ->
Kiro body; Kiro bytes -> frames -> neutral events -> OpenAI / Anthropic wire output).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.core.anthropic_format import (
    AnthropicStreamEncoder,
    anthropic_count_tokens,
    anthropic_message,
    anthropic_to_chat,
)
from ki2api_tray.core.errors import InvalidRequest, Ki2apiError, ProtocolError
from ki2api_tray.core.eventstream import EventStreamDecoder
from ki2api_tray.core.kiro_request import build_kiro_request
from ki2api_tray.core.kiro_stream import KiroStreamTranslator
from ki2api_tray.core.model import (
    ChatRequest,
    Finish,
    ImagePart,
    Message,
    ModelInfo,
    StreamEvent,
    TextDelta,
    TextPart,
    Thinking,
    ThinkingDelta,
    ThinkingPart,
    ToolCall,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from ki2api_tray.core.openai_format import OpenAIStreamEncoder, openai_completion, openai_to_chat
from ki2api_tray.core.sse import format_sse
from tests.fake_kiro import StreamReply, scenarios
from tests.fixtures_kiro import KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy
from tests.frames import encode_frame, event_frame, exception_frame

MODEL = "claude-sonnet-4.5"
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
OPENAI_PATH, ANTHROPIC_PATH, COUNT_PATH = "/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens"
SMALL_LIMIT = 64 * 1024
PNG = "iVBORw0KGgo="


# ---- over HTTP --------------------------------------------------------------------------------------------------


@pytest.fixture
def small_proxy(kiro_env: KiroEnv) -> Iterator[Proxy]:
    """The live server with a 64 KiB body limit, so "too large" is cheap to send."""
    runtime = start_proxy(kiro_env, max_body_bytes=SMALL_LIMIT)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    finally:
        runtime.service.close()


def assert_error_shape(response: httpx.Response, path: str, status: int | None = None) -> dict[str, Any]:
    """A 4xx whose JSON body has the error shape of the API that was called; returns the error object."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    body = response.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error"
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert "Traceback" not in response.text
    return error  # type: ignore[no-any-return]


def send(proxy: Proxy, path: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=proxy.url, headers={**AUTH, **(headers or {})}, timeout=30) as client:
        return client.post(path, content=content, headers={"Content-Type": "application/json"})


def openai_raw(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}


def anthropic_raw(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], **fields}


RAW = {OPENAI_PATH: openai_raw, ANTHROPIC_PATH: anthropic_raw, COUNT_PATH: anthropic_raw}
PATHS = [OPENAI_PATH, ANTHROPIC_PATH, COUNT_PATH]


@pytest.mark.parametrize("path", PATHS)
def test_body_over_limit_with_length_is_refused_with_413(small_proxy: Proxy, path: str) -> None:
    huge = json.dumps(RAW[path](padding="x" * SMALL_LIMIT)).encode()

    response = send(small_proxy, path, huge)

    error = assert_error_shape(response, path, 413)
    assert "larger than" in error["message"] and "KI2API_MAX_BODY_BYTES" in error["message"]
    assert small_proxy.kiro.fake.chat_requests() == []


@pytest.mark.parametrize("path", PATHS)
def test_chunked_body_over_limit_is_refused_with_413(small_proxy: Proxy, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "m", "padding": "'
        for _ in range(SMALL_LIMIT // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    with httpx.Client(base_url=small_proxy.url, headers=AUTH, timeout=30) as client:
        response = client.post(path, content=chunks())

    assert_error_shape(response, path, 413)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE_BODIES: dict[str, bytes] = {
    "empty": b"",
    "not-json": b"model=claude&messages=hi",
    "invalid-utf8": b'{"model": "\xff\xfe", "messages": []}',
    "top-level-array": b"[]",
    "top-level-null": b"null",
    "top-level-string": b'"hello"',
    "nested-100k": _nested(100_000).encode(),
    "nested-in-content": b'{"model": "m", "messages": [{"role": "user", "content": ' + _nested(5_000).encode() + b"}]}",
    "unterminated": b'{"model": "m", "messages": [',
    "nan": b'{"model": "m", "max_tokens": NaN, "messages": [{"role": "user", "content": "hi"}]}',
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_malformed_body_is_a_4xx_in_the_api_shape(proxy: Proxy, path: str, body: bytes) -> None:
    assert_error_shape(send(proxy, path, body), path)


WRONG: dict[str, dict[str, Any]] = {
    "messages-string": {"messages": "hi"},
    "messages-empty": {"messages": []},
    "message-number": {"messages": [1]},
    "content-number": {"messages": [{"role": "user", "content": 5}]},
    "content-object": {"messages": [{"role": "user", "content": {"text": "hi"}}]},
    "part-without-type": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    "unknown-role": {"messages": [{"role": "wizard", "content": "hi"}]},
    "role-number": {"messages": [{"role": 7, "content": "hi"}]},
    "role-missing": {"messages": [{"content": "hi"}]},
    "model-number": {"model": 5},
    "model-missing": {"model": None},
    "stream-string": {"stream": "yes"},
    "max-tokens-string": {"max_tokens": "many"},
    "max-tokens-negative": {"max_tokens": -5},
    "tools-object": {"tools": {"name": "x"}},
    "tool-without-name": {"tools": [{"type": "function", "function": {}}]},
    "tool-choice-number": {"tool_choice": 3},
    "image-garbage": {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}
        ]
    },
}


@pytest.mark.parametrize("fields", WRONG.values(), ids=WRONG.keys())
def test_openai_wrong_types_are_400(proxy: Proxy, fields: dict[str, Any]) -> None:
    response = send(proxy, OPENAI_PATH, json.dumps(openai_raw(**fields)).encode())

    assert_error_shape(response, OPENAI_PATH, 400)
    assert proxy.kiro.fake.chat_requests() == []


ANTHROPIC_WRONG: dict[str, dict[str, Any]] = {
    **{k: v for k, v in WRONG.items() if k not in ("tool-without-name", "image-garbage", "part-without-type")},
    "system-number": {"system": 5},
    "block-unknown-type": {"messages": [{"role": "user", "content": [{"type": "hologram"}]}]},
    "tool-use-input-string": {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": "[1"}]},
        ]
    },
    "image-bad-source": {
        "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": 5}}]}]
    },
    "thinking-budget-string": {"thinking": {"type": "enabled", "budget_tokens": "lots"}},
}


@pytest.mark.parametrize("path", [ANTHROPIC_PATH, COUNT_PATH])
@pytest.mark.parametrize("fields", ANTHROPIC_WRONG.values(), ids=ANTHROPIC_WRONG.keys())
def test_anthropic_wrong_types_are_400(proxy: Proxy, path: str, fields: dict[str, Any]) -> None:
    response = send(proxy, path, json.dumps(anthropic_raw(**fields)).encode())

    assert_error_shape(response, path, 400)
    assert proxy.kiro.fake.chat_requests() == []


# Odd but well-formed input: ki2api may serve it or refuse it, but never with a 5xx or a broken body.
ODD: dict[str, dict[str, Any]] = {
    "lone-surrogate-content": {"messages": [{"role": "user", "content": "broken \ud83d pair"}]},
    "lone-surrogate-model": {"model": "claude-\udc00"},
    "emoji-pair": {"messages": [{"role": "user", "content": "\U0001f600 ok"}]},
    "nul-and-controls": {"messages": [{"role": "user", "content": "a\x00b\x1b[31mc\u2028d"}]},
    "huge-model-name": {"model": "m" * 50_000},
    "huge-content": {"messages": [{"role": "user", "content": "word " * 400_000}]},
    "many-messages": {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}] * 2_000},
    "huge-integer": {"max_tokens": 10**400},
    "float-overflow": {"max_tokens": 1e308 * 10},
    "deep-tool-schema": {
        "tools": [{"type": "function", "function": {"name": "deep", "parameters": json.loads(_nested(400))}}]
    },
    "many-tools": {"tools": [{"type": "function", "function": {"name": f"t{i}"}} for i in range(2_000)]},
}


def assert_served_cleanly(response: httpx.Response, payload: bytes, path: str, streaming: bool) -> None:
    """A 4xx in the API's shape, or a 200 whose body is valid UTF-8 JSON / a complete, error-free SSE stream."""
    assert response.status_code < 500, payload[:300]
    if response.status_code >= 400:
        assert_error_shape(response, path)
        return
    text = payload.decode("utf-8")
    if not streaming:
        assert isinstance(json.loads(text), dict)
        return
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    assert text.endswith("\n\n") and data
    bodies = [json.loads(d) for d in data if d != "[DONE]"]
    assert not [b for b in bodies if "error" in b]
    assert data[-1] == "[DONE]" if path == OPENAI_PATH else bodies[-1]["type"] == "message_stop"


ODD_CASES = [
    pytest.param(path, fields, streaming, id=f"{name}-{path.rsplit('/', 1)[-1]}-{'stream' if streaming else 'whole'}")
    for name, fields in ODD.items()
    for path in PATHS
    for streaming in ([False, True] if path != COUNT_PATH else [False])
]


@pytest.mark.parametrize(("path", "fields", "streaming"), ODD_CASES)
def test_odd_input_never_causes_5xx(proxy: Proxy, path: str, fields: dict[str, Any], streaming: bool) -> None:
    proxy.kiro.fake.script(StreamReply([*scenarios.text("Fine."), *scenarios.usage()]))
    raw = RAW[path](**fields, stream=streaming)
    body = json.dumps(raw).encode()  # ensure_ascii keeps lone surrogates as \u escapes, as JS clients send them

    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=60) as client:
        with client.stream("POST", path, content=body, headers={"Content-Type": "application/json"}) as response:
            payload = response.read()

    assert_served_cleanly(response, payload, path, streaming)


def _raw_text_frame(json_text: bytes) -> bytes:
    """An assistantResponseEvent whose payload bytes are exactly `json_text` (the test encoder re-encodes dicts)."""
    headers = {":event-type": "assistantResponseEvent", ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json_text)


@pytest.mark.parametrize("path", [OPENAI_PATH, ANTHROPIC_PATH])
@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
def test_kiro_text_with_lone_surrogate_is_served_cleanly(proxy: Proxy, path: str, streaming: bool) -> None:
    # A model's output cut inside a UTF-16 pair reaches us as a lone "\ud83d" escape in valid JSON.
    tail = _raw_text_frame(b'{"content":"half an emoji: \\ud83d!"}')
    proxy.kiro.fake.script(StreamReply([*scenarios.text("Hi. ")], raw_tail=tail + event_frame("meteringEvent", {})))

    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=30) as client:
        raw = RAW[path](stream=streaming)
        with client.stream("POST", path, json=raw) as response:
            payload = response.read()

    assert_served_cleanly(response, payload, path, streaming)
    assert "half an emoji" in payload.decode("utf-8")

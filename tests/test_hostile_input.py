"""Hostile input: whatever a client (or a broken Kiro) sends, ki2api answers with a 4xx or a clean stream.

HTTP cases run against the live server in front of the fake Kiro; property-based cases push random
requests and random event streams through the whole translation chain (client JSON -> ChatRequest ->
Kiro body; Kiro bytes -> frames -> neutral events -> OpenAI / Anthropic wire output).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.core.anthropic_format import (
    AnthropicStreamEncoder,
    anthropic_count_tokens,
    anthropic_message,
    anthropic_to_chat,
)
from ki2api_tray.core.errors import Ki2apiError, ProtocolError
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
from tests.fake_kiro import FakeKiro, StreamReply, scenarios, write_token_file
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy
from tests.frames import encode_frame, event_frame, exception_frame

MODEL = "claude-sonnet-4.5"
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
OPENAI_PATH, ANTHROPIC_PATH, COUNT_PATH = "/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens"
SMALL_LIMIT = 64 * 1024
PNG = "iVBORw0KGgo="


# ---- over HTTP --------------------------------------------------------------------------------------------------


@contextmanager
def _running(fake: FakeKiro, home: Path, **overrides: Any) -> Iterator[Proxy]:
    account = fake.accounts.add_social()
    env = KiroEnv(fake, account, home, write_token_file(home, account))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("KI2API_HOME", str(home / "ki2api"))
        for variable in KIRO_URL_VARIABLES:
            patch.setenv(variable, fake.base_url)
        runtime = start_proxy(env, **overrides)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", env)
    finally:
        runtime.service.close()


@pytest.fixture(scope="module")
def servers(fake_kiro_server: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, Proxy]]:
    """One server with default settings and one with a 64 KiB body limit, shared by this module's HTTP tests.

    Starting a server per case would cost most of this module's run time; no test here changes server state.
    """
    fake_kiro_server.reset()
    home = tmp_path_factory.mktemp("hostile")
    with (
        _running(fake_kiro_server, home / "a") as proxy,
        _running(fake_kiro_server, home / "b", max_body_bytes=SMALL_LIMIT) as small,
    ):
        yield proxy, small
    fake_kiro_server.reset()


@pytest.fixture
def proxy(servers: tuple[Proxy, Proxy]) -> Proxy:
    return servers[0]


@pytest.fixture
def small_proxy(servers: tuple[Proxy, Proxy]) -> Proxy:
    return servers[1]


@contextmanager
def reaches_kiro(proxy: Proxy, expected: bool) -> Iterator[None]:
    before = len(proxy.kiro.fake.chat_requests())
    yield
    assert (len(proxy.kiro.fake.chat_requests()) > before) is expected


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

    with reaches_kiro(small_proxy, False):
        response = send(small_proxy, path, huge)

    error = assert_error_shape(response, path, 413)
    assert "larger than" in error["message"] and "KI2API_MAX_BODY_BYTES" in error["message"]


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
    "nan-in-schema": b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function",'
    b' "function": {"name": "f", "parameters": {"type": "object", "maximum": Infinity}}}], "max_tokens": 9}',
    "overflowing-float": b'{"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}],'
    b' "temperature": 1e400}',
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
    "image-non-ascii-base64": {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA\u00e9"}}],
            }
        ]
    },
    "image-garbage": {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}
        ]
    },
}


@pytest.mark.parametrize("fields", WRONG.values(), ids=WRONG.keys())
def test_openai_wrong_types_are_400(proxy: Proxy, fields: dict[str, Any]) -> None:
    with reaches_kiro(proxy, False):
        response = send(proxy, OPENAI_PATH, json.dumps(openai_raw(**fields)).encode())

    assert_error_shape(response, OPENAI_PATH, 400)


ANTHROPIC_WRONG: dict[str, dict[str, Any]] = {
    # Deliberately lenient there: untyped or unknown blocks keep their text, an unknown tool_choice means
    # "auto", and a `stream` that is not true means no stream (see tests/core/test_anthropic_format.py).
    **{
        k: v
        for k, v in WRONG.items()
        if k
        not in (
            "tool-without-name",
            "image-garbage",
            "part-without-type",
            "tool-choice-number",
            "stream-string",
            "image-non-ascii-base64",
        )
    },
    "system-number": {"system": 5},
    "tool-use-input-string": {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": "[1"}]},
        ]
    },
    "image-bad-source": {
        "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": 5}}]}]
    },
}


@pytest.mark.parametrize("path", [ANTHROPIC_PATH, COUNT_PATH])
@pytest.mark.parametrize("fields", ANTHROPIC_WRONG.values(), ids=ANTHROPIC_WRONG.keys())
def test_anthropic_wrong_types_are_400(proxy: Proxy, path: str, fields: dict[str, Any]) -> None:
    with reaches_kiro(proxy, False):
        response = send(proxy, path, json.dumps(anthropic_raw(**fields)).encode())

    assert_error_shape(response, path, 400)


# Odd but well-formed input: ki2api may serve it or refuse it, but never with a 5xx or a broken body.
ODD: dict[str, dict[str, Any]] = {
    # In history, so the fake's echo (which cannot encode it) answers the last message instead.
    "lone-surrogate-content": {
        "messages": [
            {"role": "user", "content": "broken \ud83d pair"},
            {"role": "assistant", "content": "tail \udc00"},
            {"role": "user", "content": "hi"},
        ]
    },
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
    raw = RAW[path](**fields, stream=streaming)
    body = json.dumps(raw).encode()  # ensure_ascii keeps lone surrogates as \u escapes, as JS clients send them

    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=60) as client:
        with client.stream("POST", path, content=body, headers={"Content-Type": "application/json"}) as response:
            payload = response.read()

    assert_served_cleanly(response, payload, path, streaming)


@pytest.mark.parametrize("path", [OPENAI_PATH, ANTHROPIC_PATH])
def test_huge_conversation_is_400_context_too_long(proxy: Proxy, path: str) -> None:
    raw = RAW[path](messages=[{"role": "user", "content": "word " * 400_000}])

    with reaches_kiro(proxy, False):
        response = send(proxy, path, json.dumps(raw).encode())

    error = assert_error_shape(response, path, 400)
    assert "too long" in error["message"]


@pytest.mark.parametrize(
    "data",
    ["AAA", "A", "====", " \n ", "AAAA\u00e9\u00e9=="],
    ids=["unpadded", "one-char", "padding-only", "blank", "non-ascii"],
)
def test_image_with_broken_base64_is_400_before_kiro(proxy: Proxy, data: str) -> None:
    # Found by the API fuzz: Kiro answers such an image with a bare "Improperly formed request".
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    raw = anthropic_raw(messages=[{"role": "user", "content": [image, {"type": "text", "text": "what is it?"}]}])

    with reaches_kiro(proxy, False):
        response = send(proxy, ANTHROPIC_PATH, json.dumps(raw).encode())

    assert "base64" in assert_error_shape(response, ANTHROPIC_PATH, 400)["message"]


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


# ---- property-based: the translation chain on random input ------------------------------------------------------

# Any code point, lone surrogates included: a client's "\ud83d" escape or Kiro's survives json.loads as one.
_any_text = st.text(st.characters(blacklist_categories=()), max_size=12)
# A long name is shortened with a hash of its bytes; one carrying a lone surrogate once made that crash.
LONG_SURROGATE_NAME = "mcp__" + "x" * 80 + "\ud83d"
_names = st.one_of(
    _any_text, st.sampled_from(["Read", "Bash", "mcp__" + "x" * 80, LONG_SURROGATE_NAME, "", "a b", "web_search"])
)
# What the server's strict JSON parser can hand on (no NaN or Infinity; those are refused at the edge) ...
_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), _any_text
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_any_text, inner, max_size=3),
    max_leaves=8,
)
# ... while Kiro's frames and text fields that hold JSON (tool arguments) may carry anything Python parses.
_loose_json = st.recursive(
    st.one_of(_json_leaf, st.floats()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_any_text, inner, max_size=3),
    max_leaves=8,
)
_deep = st.integers(1, 5_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth)
_arguments = st.one_of(_any_text, _deep, st.dictionaries(_any_text, _loose_json, max_size=3).map(json.dumps))
_user_parts = st.one_of(
    st.builds(TextPart, _any_text),
    st.builds(
        ImagePart,
        st.sampled_from(["image/png", "image/gif", "text/plain", ""]),
        st.sampled_from([PNG, "", "@@", "AAA", "AAAA\u00e9="]),
    ),
    st.builds(ToolResultPart, _any_text, _any_text, st.booleans()),
)
_assistant_parts = st.one_of(
    st.builds(TextPart, _any_text),
    st.builds(ThinkingPart, _any_text, _any_text),
    st.builds(ToolCallPart, _any_text, _names, _arguments),
)
_message = st.one_of(
    st.builds(lambda p: Message("user", tuple(p)), st.lists(_user_parts, max_size=3)),
    st.builds(lambda p: Message("assistant", tuple(p)), st.lists(_assistant_parts, max_size=3)),
)
_tool_spec = st.builds(ToolSpec, _names, _any_text, st.dictionaries(_any_text, _json, max_size=3))
_tool_choice = st.one_of(
    st.none(),
    st.builds(ToolChoice, st.sampled_from(["auto", "none", "any", "tool"]), _names),  # type: ignore[arg-type]
)
_thinking = st.one_of(
    st.none(),
    st.builds(
        Thinking,
        st.none() | st.integers(-(2**70), 2**70),
        st.none() | st.sampled_from(["low", "medium", "high", "max"]),  # type: ignore[arg-type]
    ),
)
chat_requests = st.builds(
    ChatRequest,
    model=_any_text,
    messages=st.lists(_message, max_size=6).map(tuple),
    system=_any_text,
    tools=st.lists(_tool_spec, max_size=3).map(tuple),
    tool_choice=_tool_choice,
    max_tokens=st.none() | st.integers(-(2**70), 2**70),
    stream=st.booleans(),
    thinking=_thinking,
)
models = st.builds(
    ModelInfo,
    st.sampled_from(["claude-sonnet-4.5", "claude-opus-4.6", "auto"]),
    max_input_tokens=st.integers(1, 1_000_000),
    supports_native_thinking=st.booleans(),
)


def _assert_kiro_body(body: bytes) -> None:
    decoded = json.loads(body)  # valid JSON (a lone surrogate stays a \u escape), no NaN that Kiro cannot parse
    assert "conversationState" in decoded
    json.dumps(decoded, allow_nan=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat=chat_requests, model=models, thinking=st.booleans(), limit=st.sampled_from([600_000, 2_000, 300]))
@example(
    chat=ChatRequest(
        "m",
        (
            Message("user", (TextPart("go"),)),
            Message("assistant", (ToolCallPart("t1", LONG_SURROGATE_NAME, "{}"),)),
            Message("user", (ToolResultPart("t1", "ok"),)),
        ),
        tools=(ToolSpec(LONG_SURROGATE_NAME, "d", {}),),
    ),
    model=ModelInfo("claude-sonnet-4.5"),
    thinking=False,
    limit=600_000,
)
def test_build_kiro_request_random_chat_request_is_valid_json_or_4xx(
    chat: ChatRequest, model: ModelInfo, thinking: bool, limit: int
) -> None:
    try:
        built = build_kiro_request(
            chat, model=model, profile_arn="arn:x", conversation_id="c", thinking=thinking, max_body_bytes=limit
        )
    except Ki2apiError as error:
        assert 400 <= error.status < 500, error
        return
    assert len(built.body) <= limit
    _assert_kiro_body(built.body)


def _openai_bodies() -> st.SearchStrategy[Any]:
    content = st.one_of(
        _any_text,
        _json,
        st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["text", "image_url", "input_audio", "x"])},
                optional={"text": _any_text, "image_url": st.fixed_dictionaries({"url": _any_text})},
            ),
            max_size=3,
        ),
    )
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "wizard"])},
        optional={
            "content": content,
            "tool_call_id": _any_text,
            "name": _names,
            "tool_calls": st.lists(
                st.fixed_dictionaries(
                    {"id": _any_text, "type": st.just("function")},
                    optional={"function": st.fixed_dictionaries({"name": _names, "arguments": _arguments})},
                ),
                max_size=2,
            ),
        },
    )
    return st.fixed_dictionaries(
        {"model": _any_text, "messages": st.lists(message, max_size=5)},
        optional={
            "tools": st.lists(
                st.fixed_dictionaries(
                    {"type": st.just("function")},
                    optional={"function": st.fixed_dictionaries({"name": _names}, optional={"parameters": _json})},
                ),
                max_size=2,
            ),
            "tool_choice": _json,
            "max_tokens": _json_leaf,
            "reasoning_effort": _json_leaf,
            "stream": _json_leaf,
        },
    )


def _anthropic_bodies() -> st.SearchStrategy[Any]:
    block = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": _any_text}),
        st.fixed_dictionaries({"type": st.just("thinking"), "thinking": _any_text}, optional={"signature": _json}),
        st.fixed_dictionaries(
            {"type": st.just("tool_use"), "id": _any_text, "name": _names}, optional={"input": _json}
        ),
        st.fixed_dictionaries(
            {"type": st.just("tool_result"), "tool_use_id": _any_text},
            optional={"content": _json, "is_error": _json_leaf},
        ),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["image", "document"])},
            optional={
                "source": st.fixed_dictionaries(
                    {"type": st.sampled_from(["base64", "url", "text"])},
                    optional={"media_type": _any_text, "data": st.sampled_from([PNG, "@@"]), "url": _any_text},
                )
            },
        ),
        _json,
    )
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "wizard"])},
        optional={"content": st.one_of(_any_text, st.lists(block, max_size=3))},
    )
    return st.fixed_dictionaries(
        {"model": _any_text, "messages": st.lists(message, max_size=5)},
        optional={
            "system": st.one_of(_any_text, st.lists(block, max_size=2)),
            "tools": st.lists(
                st.fixed_dictionaries({"name": _names}, optional={"input_schema": _json, "type": _json_leaf}),
                max_size=2,
            ),
            "tool_choice": _json,
            "max_tokens": _json_leaf,
            "thinking": st.fixed_dictionaries(
                {"type": st.sampled_from(["enabled", "adaptive", "disabled"])}, optional={"budget_tokens": _json_leaf}
            ),
            "output_config": _json,
            "stream": st.booleans(),
        },
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.one_of(_openai_bodies().map(lambda b: ("openai", b)), _anthropic_bodies().map(lambda b: ("anthropic", b))),
    model=models,
)
def test_client_json_through_kiro_body_is_4xx_or_valid(raw: tuple[str, Any], model: ModelInfo) -> None:
    api, body = raw
    try:
        chat = openai_to_chat(body) if api == "openai" else anthropic_to_chat(body)
        if api == "anthropic":
            assert anthropic_count_tokens(body)["input_tokens"] >= 0
        # The server fetches URL images before this step; the builder only ever sees inline data.
        chat = _without_url_images(chat)
        built = build_kiro_request(chat, model=model, profile_arn="arn:x", conversation_id="c")
    except Ki2apiError as error:
        assert 400 <= error.status < 500, error
        assert error.message
        return
    _assert_kiro_body(built.body)


def _without_url_images(chat: ChatRequest) -> ChatRequest:
    def keep(part: Any) -> bool:
        return not (isinstance(part, ImagePart) and part.url)

    messages = tuple(Message(m.role, tuple(p for p in m.parts if keep(p))) for m in chat.messages)
    return ChatRequest(
        chat.model, messages, chat.system, chat.tools, chat.tool_choice, chat.max_tokens, chat.stream, chat.thinking
    )


# ---- property-based: Kiro's bytes through to the client's wire format -------------------------------------------

_EVENT_TYPES = [
    "assistantResponseEvent",
    "toolUseEvent",
    "reasoningContentEvent",
    "contextUsageEvent",
    "meteringEvent",
    "metadataEvent",
    "messageMetadataEvent",
    "somethingNewEvent",
]
_payload_fields = st.dictionaries(
    st.sampled_from(
        [
            "content",
            "name",
            "toolUseId",
            "input",
            "stop",
            "text",
            "signature",
            "contextUsagePercentage",
            "usage",
            "tokenUsage",
            "stopReason",
            "modelId",
        ]
    ),  # fmt: skip
    _loose_json,
    max_size=4,
)


def _frame(event_type: str, payload: Any) -> bytes:
    # ASCII JSON, so lone surrogates travel as \u escapes exactly as a JSON producer would send them.
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps(payload).encode("ascii"))


_frames = st.one_of(
    st.builds(_frame, st.sampled_from(_EVENT_TYPES), _payload_fields),
    st.builds(lambda c: _frame("assistantResponseEvent", {"content": c}), _any_text),
    st.builds(
        lambda i, n, piece, stop: _frame("toolUseEvent", {"toolUseId": i, "name": n, "input": piece, "stop": stop}),
        st.sampled_from(["t1", "t2"]),
        _names,
        _any_text,
        st.booleans(),
    ),
    st.builds(
        exception_frame, st.sampled_from(["ThrottlingException", "ContentLengthExceededException", "X"]), _any_text
    ),
    st.builds(
        lambda raw: encode_frame({":event-type": "assistantResponseEvent", ":message-type": "event"}, raw),
        st.binary(max_size=12),
    ),
    st.builds(lambda kind: encode_frame({":message-type": kind}, b"{}"), st.sampled_from(["error", "weird", "event"])),
)


def _encode_all(events: list[StreamEvent]) -> None:
    """Both client encoders and both whole-answer builders accept the events and give plain JSON."""
    openai = OpenAIStreamEncoder(model="m", completion_id="c", created=0, include_usage=True)
    anthropic = AnthropicStreamEncoder(model="m", message_id="msg", input_tokens=3)
    chunks: list[Any] = [*openai.start(), *[c for e in events for c in openai.encode(e)]]
    sse = [*anthropic.start(), *[pair for e in events for pair in anthropic.encode(e)]]
    for chunk in chunks + [data for _, data in sse]:
        json.dumps(chunk, allow_nan=False)
    json.dumps(openai_completion(events, model="m", completion_id="c", created=0), allow_nan=False)
    json.dumps(anthropic_message(events, model="m", message_id="msg", input_tokens=3), allow_nan=False)
    _assert_anthropic_blocks_balanced([name for name, _ in sse], [data for _, data in sse])
    assert format_sse("[DONE]") == b"data: [DONE]\n\n"


def _assert_anthropic_blocks_balanced(names: list[str], data: list[Any]) -> None:
    open_index: int | None = None
    next_index = 0
    for name, body in zip(names, data, strict=True):
        if name == "content_block_start":
            assert open_index is None and body["index"] == next_index
            open_index, next_index = next_index, next_index + 1
        elif name == "content_block_delta":
            assert body["index"] == open_index
        elif name == "content_block_stop":
            assert body["index"] == open_index
            open_index = None
        elif name in ("message_delta", "message_stop"):
            assert open_index is None
    if "message_stop" in names:
        assert names[-1] == "message_stop"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(_frames, max_size=12),
    junk=st.none() | st.binary(min_size=1, max_size=20),
    cut=st.randoms(use_true_random=False),
    thinking=st.booleans(),
)
# A tool call cut off after a lone surrogate escape: its size in the retry notice once raised UnicodeEncodeError.
@example(
    frames=[_frame("toolUseEvent", {"toolUseId": "t1", "name": "t_short", "input": "\ud800"})],
    junk=None,
    cut=random.Random(0),
    thinking=False,
)
def test_kiro_bytes_to_client_output_never_crashes(
    frames: list[bytes], junk: bytes | None, cut: random.Random, thinking: bool
) -> None:
    stream = b"".join(frames)
    if junk is not None:
        at = cut.randint(0, len(stream))
        stream = stream[:at] + junk + stream[at:]
    decoder = EventStreamDecoder()
    translator = KiroStreamTranslator(
        tool_names={"t_short": "Read"}, known_tools=["Read"], thinking=thinking, input_tokens=5
    )
    events: list[StreamEvent] = []
    try:
        offset = 0
        while offset < len(stream):
            size = cut.randint(1, 40)
            for frame in decoder.feed(stream[offset : offset + size]):
                events.extend(translator.feed(frame))
            offset += size
        decoder.close()
        events.extend(translator.finish())
    except Ki2apiError as error:
        assert isinstance(error, ProtocolError) or error.status >= 400
        # What was translated before the fault still reaches the client, ending without Finish.
        _encode_all(events)
        return
    assert isinstance(events[-1], Finish) and isinstance(events[-2], Usage)
    _encode_all(events)


_stream_events = st.lists(
    st.one_of(
        st.builds(TextDelta, _any_text),
        st.builds(ThinkingDelta, _any_text),
        st.builds(ToolCall, _any_text, _names, st.dictionaries(_any_text, _loose_json, max_size=3).map(json.dumps)),
    ),
    max_size=10,
)
_endings = st.one_of(
    st.just([]),
    st.builds(
        lambda i, o, credits, reason: [Usage(i, o, credits), Finish(reason)],
        st.integers(0, 10**9),
        st.integers(0, 10**9),
        st.none() | st.floats(0, 1e6),
        st.sampled_from(["end_turn", "tool_use", "max_tokens", "content_filter"]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(body=_stream_events, ending=_endings)
def test_client_encoders_accept_any_event_sequence(body: list[StreamEvent], ending: list[StreamEvent]) -> None:
    _encode_all(body + ending)


# ---- regressions found by the properties above -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"x": NaN, "y": [Infinity, -Infinity]}', {"x": None, "y": [None, None]}),
        ("[" * 3_000 + "]" * 3_000, {}),
    ],
    ids=["nan", "deep"],
)
def test_anthropic_tool_input_is_strict_json(arguments: str, expected: dict[str, Any]) -> None:
    # A model's raw tool input may say NaN; the anthropic SDK (and JSON.parse) reject the literal.
    call = ToolCall("toolu_1", "calc", arguments)
    encoder = AnthropicStreamEncoder(model="m", message_id="msg", input_tokens=1)
    streamed = [data for _, data in encoder.encode(call)]
    whole = anthropic_message([call, Usage(1, 1), Finish("tool_use")], model="m", message_id="m", input_tokens=1)

    starts = [d["content_block"] for d in streamed if d.get("type") == "content_block_start"]
    assert whole["content"][0]["input"] == expected
    json.dumps(whole, allow_nan=False)
    for data in streamed:
        json.dumps(data, allow_nan=False)
    assert starts and starts[0]["type"] == "tool_use"


@pytest.mark.parametrize(
    "arguments",
    ['{"x": NaN}', '{"x": Infinity}', '{"a":' * 3_000 + "1" + "}" * 3_000],
    ids=["nan", "infinity", "deep"],
)
def test_kiro_body_keeps_unparseable_history_arguments_raw(arguments: str) -> None:
    chat = ChatRequest(
        "m",
        (
            Message("user", (TextPart("go"),)),
            Message("assistant", (ToolCallPart("t1", "calc", arguments),)),
            Message("user", (ToolResultPart("t1", "4"),)),
        ),
    )
    built = build_kiro_request(chat, model=ModelInfo("claude-sonnet-4.5"), profile_arn="arn:x", conversation_id="c")

    body = json.loads(built.body)
    (use,) = body["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"]
    assert use["input"] == {"raw": arguments}

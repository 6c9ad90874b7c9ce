"""Anthropic Messages <-> neutral model: lenient requests, exact stream events, SDK-checked responses."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anthropic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as SdkMessage
from anthropic.types import RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from ki2api_tray.core import errors
from ki2api_tray.core.anthropic_format import (
    THINKING_SIGNATURE,
    AnthropicStreamEncoder,
    SseEvent,
    anthropic_count_tokens,
    anthropic_error_body,
    anthropic_message,
    anthropic_to_chat,
)
from ki2api_tray.core.model import (
    ChatRequest,
    Finish,
    ImagePart,
    Message,
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
    Usage,
)
from ki2api_tray.core.sse import format_sse

try:  # newer anthropic SDKs run on the httpx2 fork and refuse plain httpx objects
    import httpx2 as sdk_httpx
except ImportError:  # pragma: no cover - older SDKs
    import httpx as sdk_httpx  # type: ignore[no-redef]

_EVENT = TypeAdapter(RawMessageStreamEvent)


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [_user("hi")]}
    body.update(overrides)
    return body


def _user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def _assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def _claude_code_body() -> dict[str, Any]:
    """Shaped like a real Claude Code turn: cached system blocks, many tools, reminders, a tool round-trip."""
    tools: list[dict[str, Any]] = [
        {
            "name": f"Tool{i}",
            "description": f"Does thing {i}.",
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
                "additionalProperties": False,
                "$schema": "http://json-schema.org/draft-07/schema#",
            },
        }
        for i in range(24)
    ]
    tools.append({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})
    return {
        "model": "claude-opus-4-1-20250805",
        "max_tokens": 32000,
        "stream": True,
        "metadata": {"user_id": "user_abc_account__session_123"},
        "temperature": 1,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "Use the tools.", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": tools,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "messages": [
            _user(
                [
                    {"type": "text", "text": "<system-reminder>\nContext: repo.\n</system-reminder>"},
                    {"type": "text", "text": "Read main.py", "cache_control": {"type": "ephemeral"}},
                ]
            ),
            {"role": "system", "content": "Stay concise."},
            _assistant(
                [
                    {"type": "thinking", "thinking": "I should read it.", "signature": "sig-1"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Reading.", "citations": None},
                    {"type": "tool_use", "id": "toolu_1", "name": "Tool0", "input": {"path": "main.py"}},
                ]
            ),
            _user(
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "print('hi')"}, {"type": "text", "text": "# end"}],
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "<system-reminder>Todo list is empty.</system-reminder>"},
                ]
            ),
        ],
    }


# --- requests ------------------------------------------------------------------------------------


def test_anthropic_to_chat_claude_code_body() -> None:
    request = anthropic_to_chat(_claude_code_body())

    assert request.model == "claude-opus-4-1-20250805"
    assert request.stream is True
    assert request.max_tokens == 32000
    assert request.system == (
        "You are Claude Code, Anthropic's official CLI for Claude.\n\nUse the tools.\n\nStay concise."
    )
    assert [t.name for t in request.tools] == [f"Tool{i}" for i in range(24)]
    assert request.tools[3].parameters["required"] == ["path"]
    assert request.tool_choice == ToolChoice(mode="auto")
    assert request.thinking == Thinking(budget_tokens=31999)
    assert request.messages == (
        Message(
            role="user",
            parts=(
                TextPart("<system-reminder>\nContext: repo.\n</system-reminder>"),
                TextPart("Read main.py"),
            ),
        ),
        Message(
            role="assistant",
            parts=(
                ThinkingPart(text="I should read it.", signature="sig-1"),
                TextPart("Reading."),
                ToolCallPart(id="toolu_1", name="Tool0", arguments='{"path":"main.py"}'),
            ),
        ),
        Message(
            role="user",
            parts=(
                ToolResultPart(tool_call_id="toolu_1", content="print('hi')\n# end"),
                TextPart("<system-reminder>Todo list is empty.</system-reminder>"),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"system": "Be brief."}, "system", "Be brief."),
        ({"system": [{"type": "text", "text": "A"}, {"type": "image"}, "B"]}, "system", "A\n\nB"),
        ({"max_tokens": None}, "max_tokens", None),
        ({"max_tokens": 4096.0}, "max_tokens", 4096),
        ({"stream": "yes"}, "stream", False),
        ({"tool_choice": {"type": "any"}}, "tool_choice", ToolChoice(mode="any")),
        ({"tool_choice": {"type": "none"}}, "tool_choice", ToolChoice(mode="none")),
        ({"tool_choice": {"type": "tool", "name": "Bash"}}, "tool_choice", ToolChoice(mode="tool", name="Bash")),
        ({"tool_choice": {"type": "whatever"}}, "tool_choice", None),
        ({"thinking": {"type": "disabled"}}, "thinking", None),
        ({"thinking": {"type": "enabled"}}, "thinking", Thinking()),
        ({"thinking": {"type": "adaptive"}}, "thinking", Thinking(effort="high")),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}},
            "thinking",
            Thinking(effort="low"),
        ),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "xhigh"}},
            "thinking",
            Thinking(effort="max"),
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048}, "output_config": {"effort": "medium"}},
            "thinking",
            Thinking(budget_tokens=2048, effort="medium"),
        ),
        ({"thinking": "on"}, "thinking", None),
        (
            {"tools": [{"name": "Bare"}, {"type": "bash_20250124", "name": "bash"}]},
            "tools",
            ("Bare", "", {"type": "object", "properties": {}}),
        ),
        (
            {"stop_sequences": ["END"], "top_k": 5, "service_tier": "auto", "container": None},
            "model",
            "claude-sonnet-4-5",
        ),
    ],
)
def test_anthropic_to_chat_top_level_fields(overrides: dict[str, Any], field: str, expected: Any) -> None:
    request = anthropic_to_chat(_body(**overrides))

    value = getattr(request, field)
    if field == "tools":
        value = (value[0].name, value[0].description, value[0].parameters) if len(value) == 1 else value
    assert value == expected


_PNG = "iVBORw0KGgo="


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        (_user("plain"), (TextPart("plain"),)),
        (_user(""), ()),
        (_user(None), ()),
        (_user(["as string"]), (TextPart("as string"),)),
        (_user([{"type": "text", "text": ""}]), ()),
        (
            _user([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _PNG}}]),
            (ImagePart(media_type="image/png", data=_PNG),),
        ),
        (
            _user([{"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]),
            (ImagePart(url="https://example.com/a.png"),),
        ),
        (
            _user([{"type": "image", "source": {"type": "url", "url": f"data:image/png;base64,{_PNG}"}}]),
            (ImagePart(media_type="image/png", data=_PNG),),
        ),
        (
            _user([{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Doc"}}]),
            (TextPart("Doc"),),
        ),
        (
            _user(
                [
                    {
                        "type": "document",
                        "title": "Notes",
                        "source": {"type": "content", "content": [{"type": "text", "text": "one"}]},
                    }
                ]
            ),
            (TextPart("Notes\n\none"),),
        ),
        (_user([{"type": "search_result", "source": "s", "content": []}]), ()),
        (_user([{"type": "future_block", "text": "kept"}]), (TextPart("kept"),)),
        (
            _user([{"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True}]),
            (ToolResultPart(tool_call_id="t1", content="boom", is_error=True),),
        ),
        (
            _user([{"type": "tool_result", "tool_use_id": "t1"}]),
            (ToolResultPart(tool_call_id="t1", content=""),),
        ),
        (
            _user(
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {"type": "text", "text": "screenshot:"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _PNG}},
                        ],
                    }
                ]
            ),
            (
                ToolResultPart(
                    tool_call_id="t1",
                    content="screenshot:\n[1 image(s) returned by this tool are attached to this message.]",
                ),
                ImagePart(media_type="image/png", data=_PNG),
            ),
        ),
        (
            _assistant([{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"cmd": "ls ü"}}]),
            (ToolCallPart(id="t1", name="Bash", arguments='{"cmd":"ls ü"}'),),
        ),
        (
            _assistant([{"type": "tool_use", "id": "t1", "name": "Bash"}]),
            (ToolCallPart(id="t1", name="Bash", arguments="{}"),),
        ),
        (
            _assistant([{"type": "tool_use", "id": "t1", "name": "Bash", "input": '{"cmd": "ls"}'}]),
            (ToolCallPart(id="t1", name="Bash", arguments='{"cmd":"ls"}'),),
        ),
        (
            _assistant([{"type": "thinking", "thinking": "hmm"}, {"type": "redacted_thinking", "data": "x"}]),
            (ThinkingPart(text="hmm"),),
        ),
        (_user([{"type": "thinking", "thinking": "not mine", "signature": "s"}]), ()),
    ],
)
def test_anthropic_to_chat_content_blocks(message: dict[str, Any], parts: tuple[Any, ...]) -> None:
    request = anthropic_to_chat(_body(messages=[_user("first"), message]))

    assert request.messages[1] == Message(role=message["role"], parts=parts)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ("text", None),
        (_body(model=""), "model"),
        (_body(model=7), "model"),
        ({"max_tokens": 10, "messages": [_user("x")]}, "model"),
        (_body(messages=[]), "messages"),
        (_body(messages={"role": "user"}), "messages"),
        (_body(messages=[{"role": "system", "content": "only system"}]), "messages"),
        (_body(messages=["hello"]), "messages[0]"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"content": "x"}]), "messages[0].role"),
        (_body(messages=[_user(42)]), "messages[0].content"),
        (_body(messages=[_user([42])]), "messages[0].content[0]"),
        (_body(messages=[_user([{"type": "text", "text": 5}])]), "messages[0].content[0].text"),
        (_body(messages=[_user([{"type": "image"}])]), "messages[0].content[0].source"),
        (_body(messages=[_user([{"type": "image", "source": {"type": "ftp"}}])]), "messages[0].content[0].source.type"),
        (
            _body(messages=[_user([{"type": "image", "source": {"type": "base64"}}])]),
            "messages[0].content[0].source.data",
        ),
        (
            _body(messages=[_user([{"type": "image", "source": {"type": "file", "file_id": "f"}}])]),
            "messages[0].content[0].source",
        ),
        (
            _body(
                messages=[_user([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf"}}])]
            ),
            "messages[0].content[0].source",
        ),
        (_body(messages=[_assistant([{"type": "tool_use", "name": "x"}])]), "messages[0].content[0].id"),
        (
            _body(messages=[_assistant([{"type": "tool_use", "id": "t", "name": "x", "input": [1]}])]),
            "messages[0].content[0].input",
        ),
        (
            _body(messages=[_assistant([{"type": "tool_use", "id": "t", "name": "x", "input": "not json"}])]),
            "messages[0].content[0].input",
        ),
        (_body(messages=[_user([{"type": "tool_result", "content": "x"}])]), "messages[0].content[0].tool_use_id"),
        (
            _body(messages=[_user([{"type": "tool_result", "tool_use_id": "t", "content": 3}])]),
            "messages[0].content[0].content",
        ),
        (_body(system=3), "system"),
        (_body(system=[3]), "system[0]"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(max_tokens=True), "max_tokens"),
        (_body(max_tokens="1024"), "max_tokens"),
        (_body(tools={"name": "x"}), "tools"),
        (_body(tools=["x"]), "tools[0]"),
        (_body(tools=[{"description": "no name"}]), "tools[0].name"),
        (_body(tool_choice={"type": "tool"}), "tool_choice.name"),
    ],
)
def test_anthropic_to_chat_rejects_impossible_bodies(body: object, param: str | None) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        anthropic_to_chat(body)

    assert caught.value.param == param
    assert caught.value.status == 400


def test_anthropic_to_chat_pdf_error_says_unsupported() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}

    with pytest.raises(errors.InvalidRequest, match="PDF"):
        anthropic_to_chat(_body(messages=[_user([pdf])]))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_block_kinds = st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "document", "x"])
_shaped_block = st.fixed_dictionaries({"type": _block_kinds}, optional={"text": _json, "source": _json, "id": _json})
_shaped_body = st.fixed_dictionaries(
    {
        "model": st.one_of(st.just("claude"), _json),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system", "bot"])},
                optional={"content": st.one_of(_json, st.lists(st.one_of(_shaped_block, _json), max_size=4))},
            ),
            max_size=3,
        ),
    },
    optional={"system": _json, "tools": _json, "tool_choice": _json, "thinking": _json, "max_tokens": _json},
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, _shaped_body))
def test_anthropic_to_chat_any_json_translates_or_is_invalid(body: object) -> None:
    try:
        request = anthropic_to_chat(body)
    except errors.InvalidRequest as exc:
        assert exc.message
    else:
        assert isinstance(request, ChatRequest)
        assert request.messages


def test_anthropic_count_tokens_grows_with_input() -> None:
    small = anthropic_count_tokens(_body())
    large = anthropic_count_tokens(_claude_code_body())

    assert set(small) == {"input_tokens"}
    assert 0 < small["input_tokens"] < large["input_tokens"]


def test_anthropic_count_tokens_rejects_bad_body() -> None:
    with pytest.raises(errors.InvalidRequest):
        anthropic_count_tokens({"model": "m"})


# --- streams -------------------------------------------------------------------------------------


def _encode(events: Iterable[StreamEvent], input_tokens: int = 12) -> list[SseEvent]:
    encoder = AnthropicStreamEncoder(model="claude-sonnet-4-5", message_id="msg_1", input_tokens=input_tokens)
    out = encoder.start()
    for event in events:
        out += encoder.encode(event)
    return out


def _shape(events: list[SseEvent]) -> list[str]:
    """Event names, with the delta or block type, e.g. `content_block_delta:text_delta@0`."""
    shape = []
    for name, data in events:
        assert data["type"] == name
        if name == "content_block_start":
            name += f":{data['content_block']['type']}@{data['index']}"
        elif name == "content_block_delta":
            name += f":{data['delta']['type']}@{data['index']}"
        elif name == "content_block_stop":
            name += f"@{data['index']}"
        shape.append(name)
    return shape


def _sdk_accumulate(events: list[SseEvent]) -> SdkMessage:
    """The official SDK's own accumulator, fed our events after validating each against its models."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for name, data in events:
        if name == "ping":
            continue
        snapshot = accumulate_event(event=_EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return snapshot


_TEXT: list[StreamEvent] = [TextDelta("Hel"), TextDelta("lo"), Usage(12, 3), Finish("end_turn")]
_THINK_THEN_TEXT: list[StreamEvent] = [
    ThinkingDelta("Let me "),
    ThinkingDelta("think."),
    TextDelta("Answer."),
    Usage(12, 9),
    Finish("end_turn"),
]
_TEXT_THEN_TOOLS: list[StreamEvent] = [
    TextDelta("Running two tools."),
    ToolCall(id="tooluse_a", name="Bash", arguments='{"command":"ls -la"}'),
    ToolCall(id="tooluse_b", name="Read", arguments='{"path":"ä.txt","limit":10}'),
    Usage(12, 40),
    Finish("tool_use"),
]


@pytest.mark.parametrize(
    ("events", "shape"),
    [
        (
            _TEXT,
            [
                "message_start",
                "ping",
                "content_block_start:text@0",
                "content_block_delta:text_delta@0",
                "content_block_delta:text_delta@0",
                "content_block_stop@0",
                "message_delta",
                "message_stop",
            ],
        ),
        (
            _THINK_THEN_TEXT,
            [
                "message_start",
                "ping",
                "content_block_start:thinking@0",
                "content_block_delta:thinking_delta@0",
                "content_block_delta:thinking_delta@0",
                "content_block_delta:signature_delta@0",
                "content_block_stop@0",
                "content_block_start:text@1",
                "content_block_delta:text_delta@1",
                "content_block_stop@1",
                "message_delta",
                "message_stop",
            ],
        ),
        (
            _TEXT_THEN_TOOLS,
            [
                "message_start",
                "ping",
                "content_block_start:text@0",
                "content_block_delta:text_delta@0",
                "content_block_stop@0",
                "content_block_start:tool_use@1",
                "content_block_delta:input_json_delta@1",
                "content_block_stop@1",
                "content_block_start:tool_use@2",
                "content_block_delta:input_json_delta@2",
                "content_block_stop@2",
                "message_delta",
                "message_stop",
            ],
        ),
    ],
)
def test_stream_encoder_event_sequence(events: list[StreamEvent], shape: list[str]) -> None:
    assert _shape(_encode(events)) == shape


@pytest.mark.parametrize(
    ("events", "content", "stop_reason", "output_tokens"),
    [
        (_TEXT, [{"type": "text", "text": "Hello"}], "end_turn", 3),
        (
            _THINK_THEN_TEXT,
            [
                {"type": "thinking", "thinking": "Let me think.", "signature": THINKING_SIGNATURE},
                {"type": "text", "text": "Answer."},
            ],
            "end_turn",
            9,
        ),
        (
            _TEXT_THEN_TOOLS,
            [
                {"type": "text", "text": "Running two tools."},
                {"type": "tool_use", "id": "tooluse_a", "name": "Bash", "input": {"command": "ls -la"}},
                {"type": "tool_use", "id": "tooluse_b", "name": "Read", "input": {"path": "ä.txt", "limit": 10}},
            ],
            "tool_use",
            40,
        ),
    ],
)
def test_stream_encoder_and_message_agree_with_sdk(
    events: list[StreamEvent], content: list[dict[str, Any]], stop_reason: str, output_tokens: int
) -> None:
    streamed = _sdk_accumulate(_encode(events))
    whole = SdkMessage.model_validate(anthropic_message(events, model="m", message_id="msg_1", input_tokens=12))

    for message in (streamed, whole):
        assert [block.model_dump(exclude_none=True) for block in message.content] == content
        assert message.stop_reason == stop_reason
        assert message.usage.output_tokens == output_tokens
        assert message.usage.input_tokens == 12


@pytest.mark.parametrize(
    ("events", "stop_reason"),
    [
        ([TextDelta("x"), Finish("max_tokens")], "max_tokens"),
        ([TextDelta("x"), Finish("content_filter")], "refusal"),
        ([ToolCall(id="t", name="n", arguments="{}"), Finish("end_turn")], "tool_use"),
        ([TextDelta("x")], None),
    ],
)
def test_stream_encoder_stop_reasons(events: list[StreamEvent], stop_reason: str | None) -> None:
    message_deltas = [data for name, data in _encode(events) if name == "message_delta"]

    assert [d["delta"]["stop_reason"] for d in message_deltas] == ([stop_reason] if stop_reason else [])


def test_stream_encoder_without_usage_reports_request_estimate() -> None:
    events = _encode([TextDelta("x"), Finish("end_turn")], input_tokens=77)

    assert _sdk_accumulate(events).usage.input_tokens == 77


def test_stream_encoder_ignores_events_after_finish() -> None:
    encoder = AnthropicStreamEncoder(model="m", message_id="msg_1", input_tokens=1)
    encoder.encode(Finish("end_turn"))

    assert encoder.finished
    assert encoder.encode(TextDelta("late")) == []
    assert encoder.encode(Finish("end_turn")) == []


def test_stream_encoder_starts_on_first_event_and_skips_empty_deltas() -> None:
    encoder = AnthropicStreamEncoder(model="m", message_id="msg_1", input_tokens=1)

    assert _shape(encoder.encode(TextDelta(""))) == ["message_start", "ping"]
    assert encoder.start() == []
    assert encoder.encode(ThinkingDelta("")) == []


def test_stream_encoder_tool_call_closes_thinking_with_signature() -> None:
    events = _encode([ThinkingDelta("plan"), ToolCall(id="t", name="n", arguments='{"a":1}'), Finish("tool_use")])

    message = _sdk_accumulate(events)
    assert [block.type for block in message.content] == ["thinking", "tool_use"]
    assert message.content[0].model_dump()["signature"] == THINKING_SIGNATURE


def _sdk_client(reply: sdk_httpx.Response) -> anthropic.Anthropic:
    def handler(request: sdk_httpx.Request) -> sdk_httpx.Response:
        return reply

    transport = sdk_httpx.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="test-key",
        base_url="http://127.0.0.1:9",
        max_retries=0,
        http_client=sdk_httpx.Client(transport=transport),
    )


def test_sdk_stream_over_sse_rebuilds_text_and_tool_input() -> None:
    body = b"".join(format_sse(data, event=name) for name, data in _encode(_THINK_THEN_TEXT[:-2] + _TEXT_THEN_TOOLS))
    client = _sdk_client(sdk_httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body))

    with client.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "go"}]) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()

    assert "".join(texts) == "Answer.Running two tools."
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.content[3].model_dump()["input"] == {"path": "ä.txt", "limit": 10}
    assert final.stop_reason == "tool_use"


def test_sdk_create_parses_whole_message() -> None:
    body = anthropic_message(_TEXT_THEN_TOOLS, model="claude-sonnet-4-5", message_id="msg_9", input_tokens=12)
    client = _sdk_client(sdk_httpx.Response(200, json=body))

    message = client.messages.create(model="m", max_tokens=100, messages=[{"role": "user", "content": "go"}])

    assert message.id == "msg_9"
    assert message.content[1].model_dump()["input"] == {"command": "ls -la"}


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (errors.InvalidRequest("bad"), "invalid_request_error"),
        (errors.UnsupportedImage("bad image"), "invalid_request_error"),
        (errors.ContextLengthExceeded("too long"), "invalid_request_error"),
        (errors.RequestTooLarge("too big"), "request_too_large"),
        (errors.AuthenticationFailed("wrong key"), "authentication_error"),
        (errors.KiroLoginRequired("log in to Kiro again"), "permission_error"),
        (errors.AccountSuspended("Kiro locked the account"), "permission_error"),
        (errors.QuotaExceeded("quota used up"), "billing_error"),
        (errors.RateLimited("slow down"), "rate_limit_error"),
        (errors.KiroUnavailable("unreachable"), "overloaded_error"),
        (errors.UpstreamTimeout("timed out"), "timeout_error"),
        (errors.UpstreamError("kiro said no"), "api_error"),
        (errors.ProtocolError("bad frame"), "api_error"),
        (errors.Ki2apiError("bug"), "api_error"),
    ],
)
def test_anthropic_error_body_types(error: errors.Ki2apiError, error_type: str) -> None:
    body = anthropic_error_body(error)

    # Claude Code compacts only when an overflow reads like Anthropic's own "prompt is too long".
    prefix = "prompt is too long: " if isinstance(error, errors.ContextLengthExceeded) else ""
    assert body == {"type": "error", "error": {"type": error_type, "message": prefix + error.message}}
    if error_type != "request_too_large":  # documented by Anthropic but absent from the SDK's union
        assert ErrorResponse.model_validate(body).error.type == error_type


@pytest.mark.parametrize(
    "message",
    ["prompt is too long: 250000 tokens > 200000 maximum", "Prompt is too long for this model."],
)
def test_anthropic_error_body_keeps_an_existing_prompt_too_long(message: str) -> None:
    body = anthropic_error_body(errors.ContextLengthExceeded(message))

    assert body["error"]["message"] == message


def test_rendered_json_has_stop_sequence_and_cache_counters() -> None:
    # The SDK's models default these when missing, so only the raw JSON shows whether they are sent.
    whole = json.loads(json.dumps(anthropic_message(_TEXT, model="m", message_id="msg_1", input_tokens=12)))
    streamed = {name: data for name, data in _encode(_TEXT)}
    cache = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

    assert whole["stop_sequence"] is None and "stop_sequence" in whole
    assert whole["usage"] == {"input_tokens": 12, "output_tokens": 3, **cache}
    start = streamed["message_start"]["message"]
    assert "stop_sequence" in start and start["stop_sequence"] is None
    assert start["usage"] == {"input_tokens": 12, "output_tokens": 0, **cache}
    assert streamed["message_delta"]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_sdk_raises_status_error_with_our_body() -> None:
    error = errors.QuotaExceeded("Your Kiro monthly quota is used up.")
    client = _sdk_client(sdk_httpx.Response(error.status, json=anthropic_error_body(error)))

    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])

    assert caught.value.status_code == 402
    assert json.loads(caught.value.response.text)["error"]["message"] == error.message

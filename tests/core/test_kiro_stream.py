"""KiroStreamTranslator: Kiro event frames -> TextDelta / ThinkingDelta / ToolCall, then Usage and Finish."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ki2api_tray.core.errors import ContextLengthExceeded, Ki2apiError, ProtocolError, RateLimited, UpstreamError
from ki2api_tray.core.eventstream import Frame
from ki2api_tray.core.kiro_stream import KiroStreamTranslator
from ki2api_tray.core.model import Finish, StopReason, StreamEvent, TextDelta, ThinkingDelta, ToolCall, Usage
from ki2api_tray.core.openai_format import openai_completion
from ki2api_tray.core.tokencount import estimate_tokens

# --- frame builders ---------------------------------------------------------------------------------


def event(event_type: str, payload: dict[str, Any], *, wrapped: bool = False) -> Frame:
    body = {event_type: payload} if wrapped else payload
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return Frame(headers={":event-type": event_type, ":message-type": "event"}, payload=raw)


def text(content: str) -> Frame:
    return event("assistantResponseEvent", {"content": content})


def tool(call_id: str, name: str, *, input: Any = None, stop: bool = False) -> Frame:
    payload: dict[str, Any] = {"name": name, "toolUseId": call_id}
    if input is not None:
        payload["input"] = input
    if stop:
        payload["stop"] = True
    return event("toolUseEvent", payload)


def tool_call_frames(call_id: str, name: str, fragments: list[str]) -> list[Frame]:
    """A call the way Kiro sends it: start, fragments, stop (kiro-protocol.md §6.1)."""
    return [tool(call_id, name), *(tool(call_id, name, input=f) for f in fragments), tool(call_id, name, stop=True)]


def exception(exception_type: str, message: str) -> Frame:
    headers = {":exception-type": exception_type, ":message-type": "exception"}
    return Frame(headers=headers, payload=json.dumps({"message": message}).encode())


def counter() -> Callable[[], str]:
    numbers: Iterator[int] = iter(range(1, 1000))
    return lambda: f"call_{next(numbers)}"


def run(frames: list[Frame], **options: Any) -> list[StreamEvent]:
    translator = KiroStreamTranslator(new_id=counter(), **options)
    events: list[StreamEvent] = []
    for frame in frames:
        events.extend(translator.feed(frame))
    events.extend(translator.finish())
    return events


def visible(events: list[StreamEvent]) -> tuple[str, str, list[ToolCall]]:
    """(thinking, text, tool calls) the way a client assembles them."""
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    answer = "".join(e.text for e in events if isinstance(e, TextDelta))
    return thinking, answer, [e for e in events if isinstance(e, ToolCall)]


def ending(events: list[StreamEvent]) -> tuple[Usage, Finish]:
    *body, usage, finish = events
    assert isinstance(usage, Usage) and isinstance(finish, Finish)
    assert not any(isinstance(e, (Usage, Finish)) for e in body), "Usage and Finish come once, at the end"
    return usage, finish


# --- text -------------------------------------------------------------------------------------------


def test_kiro_stream_text_then_usage_and_finish() -> None:
    events = run([text("Hel"), text("lo")])
    assert events[:2] == [TextDelta("Hel"), TextDelta("lo")]
    usage, finish = ending(events)
    assert finish == Finish("end_turn")
    assert usage == Usage(input_tokens=0, output_tokens=estimate_tokens("Hello"), estimated=True)


def test_kiro_stream_nothing_after_finish() -> None:
    translator = KiroStreamTranslator()
    translator.feed(text("a"))
    assert translator.finish()[-1] == Finish("end_turn")
    assert translator.feed(text("late")) == []
    assert translator.finish() == []


def test_kiro_stream_empty_response_still_ends_with_usage_and_finish() -> None:
    events = run([])
    assert ending(events)[1] == Finish("end_turn")
    assert len(events) == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"followupPrompt": {"content": "Want more?", "userIntent": "x"}},
        {"content": ""},
        {"conversationId": "c1"},
        {"content": 42},
    ],
)
def test_kiro_stream_content_events_without_text_are_skipped(payload: dict[str, Any]) -> None:
    translator = KiroStreamTranslator()
    assert translator.feed(event("assistantResponseEvent", payload)) == []
    assert not translator.has_output


@pytest.mark.parametrize(
    ("dedupe", "expected"),
    [(False, "a\n\nb"), (True, "a\nb")],
)
def test_kiro_stream_dedupe_of_repeated_delta(dedupe: bool, expected: str) -> None:
    events = run([text("a"), text("\n"), text("\n"), text("b")], dedupe=dedupe)
    assert visible(events)[1] == expected


def test_kiro_stream_dedupe_keeps_non_adjacent_repeats() -> None:
    events = run([text("ab"), text("c"), text("ab")], dedupe=True)
    assert visible(events)[1] == "abcab"


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (event("assistantResponseEvent", {"content": "hi"}, wrapped=True), [TextDelta("hi")]),
        (event("reasoningContentEvent", {"text": "hm"}, wrapped=True), [ThinkingDelta("hm")]),
        (event("reasoningContentEvent", {"text": "hm", "signature": "s"}), [ThinkingDelta("hm")]),
        (event("reasoningContentEvent", {"redactedContent": "AAAA"}), []),
        (event("reasoningContentEvent", {"text": ""}), []),
        (event("someFutureEvent", {"content": "not text"}), []),
        (event("messageMetadataEvent", {"conversationId": "c"}), []),
        (Frame(headers={":event-type": "someFutureEvent", ":message-type": "event"}, payload=b"not json"), []),
        (Frame(headers={":event-type": "assistantResponseEvent", ":message-type": "event"}, payload=b""), []),
        (Frame(headers={":event-type": "assistantResponseEvent", ":message-type": "ping"}, payload=b"{"), []),
    ],
)
def test_kiro_stream_event_shapes(frame: Frame, expected: list[StreamEvent]) -> None:
    assert KiroStreamTranslator().feed(frame) == expected


@pytest.mark.parametrize("payload", [b"{not json", b'"a string"', b"[1, 2]", b"\xff\xfe{}"])
def test_kiro_stream_bad_payload_is_protocol_error(payload: bytes) -> None:
    frame = Frame(headers={":event-type": "assistantResponseEvent", ":message-type": "event"}, payload=payload)
    with pytest.raises(ProtocolError, match="assistantResponseEvent"):
        KiroStreamTranslator().feed(frame)


# --- thinking ---------------------------------------------------------------------------------------

THINKING_REPLY = '\n<thinking>Check the "file" first.\n</thinking>\n\nIt is <b>fine</b>.'


def test_kiro_stream_thinking_one_char_per_event() -> None:
    events = run([text(ch) for ch in THINKING_REPLY], thinking=True)
    assert visible(events)[:2] == ('Check the "file" first.\n', "It is <b>fine</b>.")


def test_kiro_stream_thinking_every_two_way_split() -> None:
    for cut in range(1, len(THINKING_REPLY)):
        events = run([text(THINKING_REPLY[:cut]), text(THINKING_REPLY[cut:])], thinking=True)
        assert visible(events)[:2] == ('Check the "file" first.\n', "It is <b>fine</b>."), f"split at {cut}"


def test_kiro_stream_thinking_off_keeps_tags_as_text() -> None:
    assert visible(run([text(THINKING_REPLY)]))[:2] == ("", THINKING_REPLY)


def test_kiro_stream_reasoning_event_is_thinking_even_when_tags_are_off() -> None:
    events = run([event("reasoningContentEvent", {"text": "deep"}), text("answer")])
    assert events[:2] == [ThinkingDelta("deep"), TextDelta("answer")]


def test_kiro_stream_unclosed_thinking_is_released_at_end() -> None:
    events = run([text("<thinking>cut off </think")], thinking=True)
    assert visible(events)[:2] == ("cut off </think", "")


# --- tool calls -------------------------------------------------------------------------------------


def test_kiro_stream_tool_call_from_many_fragments() -> None:
    frames = tool_call_frames("tooluse_1", "bash", ['{"com', 'mand": "ls', " -la", '"}'])
    events = run(frames)
    assert events[0] == ToolCall(id="tooluse_1", name="bash", arguments='{"command": "ls -la"}')
    assert ending(events)[1] == Finish("tool_use")


def test_kiro_stream_two_tool_calls_in_sequence() -> None:
    frames = [
        text("Two things."),
        *tool_call_frames("t1", "read", ['{"path":', ' "a"}']),
        *tool_call_frames("t2", "read", ['{"path":', ' "b"', "}"]),
    ]
    _, answer, calls = visible(run(frames))
    assert answer == "Two things."
    assert calls == [ToolCall("t1", "read", '{"path": "a"}'), ToolCall("t2", "read", '{"path": "b"}')]


@pytest.mark.parametrize(
    "fragments",
    [
        ['{"text": "caf\\u00', 'e9 au lait"}'],
        ['{"text": "caf\\', 'u00e9 au lait"}'],
        ['{"text": "ca', "f\\u00e9 au", ' lait"}'],
        ['{"te', 'xt": "café au lait"}'],
    ],
)
def test_kiro_stream_fragments_split_strings_and_escapes(fragments: list[str]) -> None:
    calls = visible(run(tool_call_frames("t1", "note", fragments)))[2]
    assert [c.arguments for c in calls] == ["".join(fragments)]
    assert json.loads(calls[0].arguments) == {"text": "café au lait"}


def test_kiro_stream_arguments_are_byte_identical() -> None:
    raw = '{ "z": 1,\n  "a": "\\u00e9\\n",  "n": 1.50, "e": [] }'
    calls = visible(run(tool_call_frames("t1", "x", [raw[:7], raw[7:20], raw[20:]])))[2]
    assert calls[0].arguments == raw


@pytest.mark.parametrize(
    ("frames", "arguments"),
    [
        (tool_call_frames("t1", "now", []), "{}"),
        (tool_call_frames("t1", "now", [""]), "{}"),
        ([tool("t1", "f", input={"a": "é"}), tool("t1", "f", stop=True)], '{"a":"é"}'),
    ],
)
def test_kiro_stream_tool_arguments_defaults(frames: list[Frame], arguments: str) -> None:
    assert [c.arguments for c in visible(run(frames))[2]] == [arguments]


def test_kiro_stream_tool_name_mapped_back_to_client_name() -> None:
    calls = visible(run(tool_call_frames("t1", "mcp_fs_read", ["{}"]), tool_names={"mcp_fs_read": "mcp/fs.read"}))[2]
    assert calls == [ToolCall("t1", "mcp/fs.read", "{}")]


def test_kiro_stream_duplicate_start_and_stop_do_not_repeat_a_call() -> None:
    frames = [*tool_call_frames("t1", "a", ["{}"]), tool("t1", "a"), tool("t1", "a", stop=True)]
    assert len(visible(run(frames))[2]) == 1


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(tool_call_frames("t1", "Write", ['{"path": "big.py", ', '"content": "def f(']), id="at-stop"),
        pytest.param(
            [tool("t1", "Write"), tool("t1", "Write", input='{"path": "big.py", '), tool("t1", "Write", input='"con')],
            id="at-end-of-stream",
        ),
    ],
)
def test_kiro_stream_truncated_tool_call_becomes_a_retry_notice(frames: list[Frame]) -> None:
    arguments = "".join(json.loads(f.payload).get("input", "") for f in frames)
    events = run([text("Writing the file."), *frames])
    _, answer, calls = visible(events)
    assert calls == []
    notice = answer.removeprefix("Writing the file.")
    assert "`Write`" in notice and f"{len(arguments.encode())} bytes" in notice
    assert "smaller" in notice
    assert ending(events)[1] == Finish("max_tokens")


def test_kiro_stream_good_call_survives_a_truncated_one() -> None:
    frames = [*tool_call_frames("t1", "a", ["{}"]), *tool_call_frames("t2", "b", ['{"x": ['])]
    events = run(frames)
    assert [c.id for c in visible(events)[2]] == ["t1"]
    assert ending(events)[1] == Finish("max_tokens")


def test_kiro_stream_call_without_input_or_stop_is_a_notice_naming_the_client_tool() -> None:
    # Kiro knows the tool by its shortened name; the client must read its own.
    events = run([tool("t1", "mcp_fs_read_3f2a")], tool_names={"mcp_fs_read_3f2a": "mcp/fs.read"})
    _, answer, calls = visible(events)
    assert calls == []
    assert answer.startswith("[ki2api: your call to the tool `mcp/fs.read` was cut off by Kiro after 0 bytes")
    assert ending(events)[1] == Finish("max_tokens")
    completion = openai_completion(events, model="m", completion_id="c", created=0)
    assert completion["choices"][0]["finish_reason"] == "length"


def _ascii_tool_frame(payload: dict[str, Any]) -> Frame:
    # ASCII JSON, so a lone surrogate travels as the "\ud800" escape a JSON producer sends.
    headers = {":event-type": "toolUseEvent", ":message-type": "event"}
    return Frame(headers=headers, payload=json.dumps(payload).encode())


def test_kiro_stream_cut_off_call_with_lone_surrogate_is_a_notice() -> None:
    frames = [_ascii_tool_frame({"toolUseId": "t1", "name": "Write", "input": '{"text": "half \ud800'})]
    events = run(frames)
    _, answer, calls = visible(events)
    assert calls == []
    # 15 ASCII characters plus the lone surrogate, counted as the three bytes `surrogatepass` gives it.
    assert "`Write` was cut off by Kiro after 18 bytes" in answer
    assert ending(events)[1] == Finish("max_tokens")


def test_kiro_stream_open_call_with_complete_object_is_emitted_at_end() -> None:
    # No stop frame, but a JSON object that parses cannot have been cut short.
    events = run([tool("t1", "ls", input='{"dir": "."}')])
    assert visible(events)[2] == [ToolCall("t1", "ls", '{"dir": "."}')]
    assert ending(events)[1] == Finish("tool_use")


def test_kiro_stream_bracket_call_split_across_events() -> None:
    reply = 'Looking. [Called read with args: {"path": "x]}"}] Done.'
    events = run([text(ch) for ch in reply], known_tools=["read"])
    _, answer, calls = visible(events)
    assert answer == "Looking.  Done."
    assert calls == [ToolCall("call_1", "read", '{"path": "x]}"}')]
    assert ending(events)[1] == Finish("tool_use")


@pytest.mark.parametrize(
    ("options", "calls"),
    [
        ({}, 0),
        ({"known_tools": ["other"]}, 0),
        ({"known_tools": ["read"]}, 1),
        ({"tool_names": {"kiro_read": "read"}}, 1),
    ],
)
def test_kiro_stream_bracket_calls_only_for_known_tools(options: dict[str, Any], calls: int) -> None:
    events = run([text("[Called read with args: {}]")], **options)
    assert len(visible(events)[2]) == calls


def test_kiro_stream_bracket_call_after_thinking() -> None:
    events = run([text("<think>plan</think>\n[Called read with args: {}]")], thinking=True, known_tools=["read"])
    assert visible(events) == ("plan", "", [ToolCall("call_1", "read", "{}")])


# --- usage and stop reason --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        pytest.param([], Usage(1234, estimate_tokens("abc")), id="constructor-estimate"),
        pytest.param(
            [event("contextUsageEvent", {"contextUsagePercentage": 12.5})],
            Usage(25_000, estimate_tokens("abc"), context_percent=12.5),
            id="context-percentage",
        ),
        pytest.param(
            [event("contextUsageEvent", {"contextUsagePercentage": 0})],
            Usage(1234, estimate_tokens("abc")),
            id="zero-percent",
        ),
        pytest.param(
            [event("meteringEvent", {"usage": 0.25, "unit": "credit"}), event("meteringEvent", {"usage": 0.5})],
            Usage(1234, estimate_tokens("abc"), credits=0.75),
            id="metering",
        ),
        pytest.param(
            [
                event("contextUsageEvent", {"contextUsagePercentage": 50}),
                event(
                    "metadataEvent",
                    {
                        "tokenUsage": {
                            "uncachedInputTokens": 100,
                            "cacheReadInputTokens": 900,
                            "cacheWriteInputTokens": 50,
                            "outputTokens": 7,
                            "totalTokens": 1057,
                        }
                    },
                ),
            ],
            Usage(1050, 7, estimated=False, context_percent=50.0),
            id="exact-metadata",
        ),
        pytest.param(
            [event("metadataEvent", {"tokenUsage": {"outputTokens": 9}})],
            Usage(1234, 9, estimated=True),
            id="partial-metadata",
        ),
        pytest.param(
            [event("metadataEvent", {"tokenUsage": {"uncachedInputTokens": 5, "outputTokens": 9}}, wrapped=True)],
            Usage(5, 9, estimated=False),
            id="wrapped-metadata",
        ),
        # Zero is a count like any other: it must not fall back to the estimates.
        pytest.param(
            [event("metadataEvent", {"tokenUsage": {"uncachedInputTokens": 0, "outputTokens": 0}})],
            Usage(0, 0, estimated=False),
            id="zero-counts",
        ),
        pytest.param(
            [event("metadataEvent", {"tokenUsage": {"outputTokens": 0}})],
            Usage(1234, 0, estimated=True),
            id="zero-output-only",
        ),
        pytest.param(
            [event("metadataEvent", {"tokenUsage": {"uncachedInputTokens": 10.6, "outputTokens": -3}})],
            Usage(11, 0, estimated=False),
            id="fraction-rounds-negative-clamps",
        ),
        pytest.param(
            [
                event(
                    "metadataEvent",
                    {"tokenUsage": {"uncachedInputTokens": -50, "cacheReadInputTokens": 20, "outputTokens": True}},
                )
            ],
            Usage(0, estimate_tokens("abc"), estimated=True),
            id="negative-sum-clamps-bool-ignored",
        ),
    ],
)
def test_kiro_stream_usage_sources(frames: list[Frame], expected: Usage) -> None:
    events = run([text("abc"), *frames], input_tokens=1234)
    assert ending(events)[0] == expected


def test_kiro_stream_carries_credits_and_context_percentage_through_a_full_answer() -> None:
    """A stream that ends the way Kiro's do (§6, §11): credits from every meteringEvent reach the Usage event."""
    trailer = [
        event("contextUsageEvent", {"contextUsagePercentage": 140}),
        event("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.12}),
        event("meteringEvent", {"unit": "credit", "usage": 0.03}),
    ]
    usage = ending(run([text("Hi"), *trailer]))[0]
    assert usage.credits == pytest.approx(0.15)
    assert usage.context_percent == 100.0  # a figure past 100 % still means "full"


def test_kiro_stream_context_percentage_uses_the_model_window() -> None:
    events = run([event("contextUsageEvent", {"contextUsagePercentage": 10})], context_window=1_000_000)
    assert ending(events)[0].input_tokens == 100_000



# Times the default 200k window, this overflows a float to infinity.
HUGE_PERCENT = 8.98846567431158e304


def test_kiro_stream_context_percentage_past_100_counts_as_a_full_window() -> None:
    """A huge figure (9e304 %) once overflowed to infinity and crashed the stream; it means a full window."""
    events = run([event("contextUsageEvent", {"contextUsagePercentage": HUGE_PERCENT})], context_window=200_000)
    usage = ending(events)[0]
    assert (usage.input_tokens, usage.context_percent) == (200_000, 100.0)

def test_kiro_stream_output_estimate_counts_thinking_text_and_tool_arguments() -> None:
    frames = [
        event("reasoningContentEvent", {"text": "think "}),
        text("say "),
        *tool_call_frames("t", "f", ['{"a":1}']),
    ]
    assert ending(run(frames))[0].output_tokens == estimate_tokens('think say {"a":1}')


@pytest.mark.parametrize(
    ("stop_reason", "with_tool", "finish"),
    [
        ("MAX_TOKENS", False, "max_tokens"),
        ("MODEL_CONTEXT_WINDOW_EXCEEDED", False, "max_tokens"),
        ("CONTENT_FILTERED", False, "content_filter"),
        ("CONTENT_FILTERED", True, "content_filter"),
        ("END_TURN", False, "end_turn"),
        ("END_TURN", True, "tool_use"),
        ("TOOL_USE", False, "end_turn"),
        ("SOMETHING_NEW", False, "end_turn"),
    ],
)
def test_kiro_stream_metadata_stop_reason(stop_reason: str, with_tool: bool, finish: StopReason) -> None:
    frames = [text("x"), *(tool_call_frames("t", "f", ["{}"]) if with_tool else [])]
    events = run([*frames, event("metadataEvent", {"stopReason": stop_reason})])
    assert ending(events)[1] == Finish(finish)


# --- errors inside the stream -----------------------------------------------------------------------


def test_kiro_stream_content_length_exceeded_before_output_raises() -> None:
    translator = KiroStreamTranslator()
    with pytest.raises(ContextLengthExceeded, match="compact"):
        translator.feed(exception("ContentLengthExceededException", "Input is too long."))
    assert translator.feed(text("late")) == []


def test_kiro_stream_content_length_exceeded_after_output_ends_with_max_tokens() -> None:
    translator = KiroStreamTranslator(thinking=True)
    assert translator.feed(text("Partial answer")) == [TextDelta("Partial answer")]
    assert translator.has_output
    events = translator.feed(exception("ContentLengthExceededException", "Input is too long."))
    assert [type(e) for e in events] == [Usage, Finish]
    assert events[-1] == Finish("max_tokens")
    assert translator.finish() == []


@pytest.mark.parametrize(
    ("frame", "error", "message"),
    [
        (exception("ThrottlingException", "Too many requests"), RateLimited, "Too many requests"),
        (exception("InternalServerException", "Boom happened"), UpstreamError, "Boom happened"),
        (
            Frame(headers={":message-type": "exception", ":exception-type": "X"}, payload=b"plain words"),
            UpstreamError,
            "plain words",
        ),
        (
            Frame(
                headers={":message-type": "error", ":error-code": "InternalFailure", ":error-message": "It broke"},
                payload=b"",
            ),
            UpstreamError,
            "InternalFailure.*It broke",
        ),
        (
            Frame(headers={":message-type": "error", ":error-code": "Bad"}, payload=b'{"message": "from payload"}'),
            UpstreamError,
            "from payload",
        ),
    ],
)
def test_kiro_stream_exceptions_raise(frame: Frame, error: type[Exception], message: str) -> None:
    translator = KiroStreamTranslator()
    translator.feed(text("some output"))
    with pytest.raises(error, match=message):
        translator.feed(frame)
    assert translator.finish() == []


def _raw_exception(exception_type: str, payload: bytes) -> Frame:
    return Frame(headers={":message-type": "exception", ":exception-type": exception_type}, payload=payload)


@pytest.mark.parametrize(
    ("frame", "error", "reason", "message"),
    [
        (
            exception("ThrottlingException", "Too many requests"),
            RateLimited,
            "ThrottlingException",
            "Kiro is throttling requests, try again shortly: Too many requests",
        ),
        (
            exception("InternalServerException", "Boom"),
            UpstreamError,
            "InternalServerException",
            "Kiro reported an error in the middle of the answer (InternalServerException): Boom",
        ),
        (
            _raw_exception("ValidationException", b'{"Message": "capitalised key"}'),
            UpstreamError,
            "ValidationException",
            "Kiro reported an error in the middle of the answer (ValidationException): capitalised key",
        ),
        (
            _raw_exception("X", b'{"message": 42, "Message": ["no"], "errorMessage": "third key"}'),
            UpstreamError,
            "X",
            "Kiro reported an error in the middle of the answer (X): third key",
        ),
        (
            _raw_exception("ServiceException", b'{"message": {"text": "nested"}}'),
            UpstreamError,
            "ServiceException",
            "Kiro reported an error in the middle of the answer (ServiceException): ServiceException",
        ),
        (
            _raw_exception("X", b"bad \xff\xfe bytes"),
            UpstreamError,
            "X",
            "Kiro reported an error in the middle of the answer (X): bad \ufffd\ufffd bytes",
        ),
        (
            _raw_exception("X", b"x" * 400),
            UpstreamError,
            "X",
            "Kiro reported an error in the middle of the answer (X): " + "x" * 300,
        ),
        (
            Frame(headers={":message-type": "exception"}, payload=b""),
            UpstreamError,
            "",
            "Kiro reported an error in the middle of the answer (exception): no details given",
        ),
        (
            Frame(headers={":message-type": "error", ":error-code": "InternalFailure"}, payload=b""),
            UpstreamError,
            "InternalFailure",
            "Kiro reported an error in the middle of the answer (InternalFailure): no details given",
        ),
        (
            Frame(headers={":message-type": "error", ":error-code": 7}, payload=b'{"Message": "odd code"}'),
            UpstreamError,
            None,
            "Kiro reported an error in the middle of the answer (error): odd code",
        ),
    ],
)
def test_kiro_stream_exception_reason_and_message(
    frame: Frame, error: type[UpstreamError], reason: str | None, message: str
) -> None:
    with pytest.raises(error) as caught:
        KiroStreamTranslator().feed(frame)
    assert type(caught.value) is error
    assert caught.value.reason == reason
    assert caught.value.message == message


def test_kiro_stream_content_length_exceeded_carries_the_reason() -> None:
    with pytest.raises(ContextLengthExceeded) as caught:
        KiroStreamTranslator().feed(exception("ContentLengthExceededException", "Input is too long."))
    assert caught.value.reason == "ContentLengthExceededException"


def test_kiro_stream_has_output_tracks_visible_events() -> None:
    translator = KiroStreamTranslator(thinking=True)
    translator.feed(event("contextUsageEvent", {"contextUsagePercentage": 3}))
    translator.feed(text("<thin"))
    assert not translator.has_output
    translator.feed(text("king>x"))
    assert translator.has_output


# --- any sequence of events -------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_ids = st.sampled_from(["t1", "t2", "t3"])
_event_frames = st.one_of(
    st.builds(text, st.text(alphabet='<>/thinkg[]{}"\\ Caledwrs:a\n', max_size=12)),
    st.builds(
        lambda i, name, piece, stop: tool(i, name, input=piece, stop=stop),
        _ids,
        st.sampled_from(["read", "bash"]),
        st.none() | st.text(alphabet='{}[]":,a1\\ ', max_size=6) | st.dictionaries(st.text(max_size=3), _json_values),
        st.booleans(),
    ),
    st.builds(lambda t: event("reasoningContentEvent", {"text": t}), st.text(max_size=5)),
    st.builds(lambda p: event("contextUsageEvent", {"contextUsagePercentage": p}), _json_values),
    st.builds(lambda u: event("meteringEvent", {"usage": u}), _json_values),
    st.builds(lambda u, s: event("metadataEvent", {"tokenUsage": u, "stopReason": s}), _json_values, _json_values),
    st.builds(
        event,
        st.sampled_from(["assistantResponseEvent", "toolUseEvent", "metadataEvent", "other"]),
        st.dictionaries(st.sampled_from(["content", "toolUseId", "input", "stop", "tokenUsage"]), _json_values),
        wrapped=st.booleans(),
    ),
    st.builds(exception, st.sampled_from(["ContentLengthExceededException", "ThrottlingException", "X"]), st.text()),
    st.builds(
        lambda kind, raw: Frame(headers={":event-type": kind, ":message-type": "event"}, payload=raw),
        st.sampled_from(["assistantResponseEvent", "toolUseEvent", "meteringEvent"]),
        st.binary(max_size=8),
    ),
)


@settings(max_examples=400, deadline=None)
@given(frames=st.lists(_event_frames, max_size=25), thinking=st.booleans(), dedupe=st.booleans())
@example(frames=[event("contextUsageEvent", {"contextUsagePercentage": HUGE_PERCENT})], thinking=False, dedupe=False)
def test_kiro_stream_any_sequence_ends_with_usage_and_finish(frames: list[Frame], thinking: bool, dedupe: bool) -> None:
    translator = KiroStreamTranslator(thinking=thinking, dedupe=dedupe, known_tools=["read"])
    events: list[StreamEvent] = []
    try:
        for frame in frames:
            events.extend(translator.feed(frame))
        events.extend(translator.finish())
    except Ki2apiError:
        assert translator.finish() == []
        return
    usage, _ = ending(events)
    kinds = {frame.event_type for frame in frames}
    if "metadataEvent" not in kinds:
        # No exact count from Kiro: output is the estimate of exactly what the client was shown.
        shown = [e.arguments if isinstance(e, ToolCall) else e.text for e in events[:-2]]  # all but Usage, Finish
        assert usage.output_tokens == estimate_tokens("".join(shown))
        if "contextUsageEvent" not in kinds:
            assert usage.input_tokens == 0  # the constructor's estimate
    for call in (e for e in events if isinstance(e, ToolCall)):
        assert isinstance(json.loads(call.arguments), dict)
    assert len({c.id for c in events if isinstance(c, ToolCall)}) == sum(isinstance(c, ToolCall) for c in events)

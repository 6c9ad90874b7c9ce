"""OpenAI Chat Completions <-> neutral model: request validation, chunk and completion shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.shared import ErrorObject

from ki2api_tray.core.errors import InvalidRequest, Ki2apiError, KiroLoginRequired, QuotaExceeded, UnsupportedImage
from ki2api_tray.core.model import (
    ChatRequest,
    Finish,
    ImagePart,
    Message,
    ModelInfo,
    StopReason,
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
from ki2api_tray.core.openai_format import (
    OpenAIStreamEncoder,
    openai_completion,
    openai_error_body,
    openai_include_usage,
    openai_model_list,
    openai_to_chat,
)

PNG = "iVBORw0KGgo="  # the PNG signature, base64
HI = [{"role": "user", "content": "hi"}]
USER_HI = Message("user", (TextPart("hi"),))
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4.5", "messages": HI, **fields}


def request(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="claude-sonnet-4.5", messages=messages or (USER_HI,), **fields)


# --- requests that translate -----------------------------------------------------------------

VALID = [
    pytest.param(body(), request(), id="minimal"),
    pytest.param(
        body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {
                    "role": "developer",
                    "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "tools."}],
                },
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "Late context."},
                {"role": "system", "content": ""},
            ]
        ),
        request(system="Be brief.\n\nUse tools.\n\nLate context."),
        id="system-and-developer-gathered-wherever-they-appear",
    ),
    pytest.param(
        body(
            messages=[
                {
                    "role": "user",
                    "name": "ann",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/PNG;base64,{PNG}", "detail": "high"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {"type": "image_url", "image_url": f"data:image/jpeg;name=x.jpg;base64,{PNG[:4]}\n{PNG[4:]}"},
                    ],
                }
            ]
        ),
        request(
            Message(
                "user",
                (
                    TextPart("what is this?"),
                    ImagePart(media_type="image/png", data=PNG),
                    ImagePart(url="https://example.com/cat.jpg"),
                    ImagePart(media_type="image/jpeg", data=PNG),
                ),
            )
        ),
        id="user-text-and-images",
    ),
    pytest.param(
        body(
            messages=[
                *HI,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city"'}},
                        {"id": "call_2", "function": {"name": "time", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
                {"role": "user", "content": "thanks"},
            ]
        ),
        request(
            USER_HI,
            Message("assistant", (ToolCallPart("call_1", "weather", '{"city"'), ToolCallPart("call_2", "time", ""))),
            Message("user", (ToolResultPart("call_1", "sunny"), ToolResultPart("call_2", "12:00"))),
            Message("user", (TextPart("thanks"),)),
        ),
        id="tool-round-trip-results-share-one-message",
    ),
    pytest.param(
        body(
            messages=[
                *HI,
                {
                    "role": "assistant",
                    "reasoning_content": "They greet.",
                    "content": [{"type": "text", "text": "Hello"}, {"type": "refusal", "refusal": "No."}],
                },
                {"role": "assistant", "content": "", "refusal": "Cannot."},
            ]
        ),
        request(
            USER_HI,
            Message("assistant", (ThinkingPart("They greet."), TextPart("Hello"), TextPart("No."))),
            Message("assistant", (TextPart(""), TextPart("Cannot."))),
        ),
        id="assistant-reasoning-text-and-refusal",
    ),
    pytest.param(
        body(
            messages=[
                *HI,
                {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": "{}"}},
                {"role": "function", "name": "weather", "content": "rain"},
            ],
            functions=[{"name": "weather", "description": "Forecast"}],
            function_call={"name": "weather"},
        ),
        request(
            USER_HI,
            Message("assistant", (ToolCallPart("call_legacy_1", "weather", "{}"),)),
            Message("user", (ToolResultPart("call_legacy_1", "rain"),)),
            tools=(ToolSpec("weather", "Forecast", {"type": "object", "properties": {}}),),
            tool_choice=ToolChoice("tool", "weather"),
        ),
        id="legacy-functions-pair-call-and-result",
    ),
    pytest.param(
        body(
            tools=[WEATHER, {"type": "function", "function": {"name": "now", "description": None}}],
            tool_choice="required",
        ),
        request(
            tools=(
                ToolSpec("weather", "", {"type": "object"}),
                ToolSpec("now", "", {"type": "object", "properties": {}}),
            ),
            tool_choice=ToolChoice("any"),
        ),
        id="tools-required",
    ),
    pytest.param(
        body(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "weather"}}),
        request(tools=(ToolSpec("weather", "", {"type": "object"}),), tool_choice=ToolChoice("tool", "weather")),
        id="tool-choice-named",
    ),
    pytest.param(body(tool_choice="none"), request(tool_choice=ToolChoice("none")), id="tool-choice-none"),
    pytest.param(body(function_call="auto"), request(tool_choice=ToolChoice("auto")), id="legacy-function-call-auto"),
    pytest.param(body(max_tokens=100), request(max_tokens=100), id="max-tokens"),
    pytest.param(body(max_tokens=100, max_completion_tokens=50), request(max_tokens=50), id="max-completion-wins"),
    pytest.param(
        body(stream=True, stream_options={"include_usage": True}), request(stream=True), id="stream-with-usage"
    ),
    pytest.param(body(reasoning_effort="minimal"), request(thinking=Thinking(effort="low")), id="effort-minimal"),
    pytest.param(body(reasoning_effort="medium"), request(thinking=Thinking(effort="medium")), id="effort-medium"),
    pytest.param(body(reasoning_effort="xhigh"), request(thinking=Thinking(effort="max")), id="effort-xhigh"),
    pytest.param(body(reasoning_effort="none"), request(), id="effort-none"),
    pytest.param(
        body(temperature=0.2, top_p=1, user="u1", metadata={"a": "b"}, n=1, seed=7, logprobs=False),
        request(dropped=("metadata", "seed", "temperature", "top_p", "user")),
        id="unused-fields-listed-as-dropped",
    ),
    pytest.param(
        body(stream=None, tools=None, tool_choice=None, max_tokens=None, reasoning_effort=None, n=None),
        request(),
        id="nulls-mean-unset",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_openai_to_chat_translates_valid_request(raw: dict[str, Any], expected: ChatRequest) -> None:
    assert openai_to_chat(raw) == expected


# --- requests that are refused ---------------------------------------------------------------


def user(content: Any) -> dict[str, Any]:
    return body(messages=[{"role": "user", "content": content}])


def image(url: Any) -> dict[str, Any]:
    return user([{"type": "image_url", "image_url": {"url": url}}])


def call(**function: Any) -> dict[str, Any]:
    tool_call = {"id": "c1", "type": "function", "function": function}
    return body(messages=[*HI, {"role": "assistant", "content": None, "tool_calls": [tool_call]}])


def tool_message(**fields: Any) -> dict[str, Any]:
    return body(messages=[*HI, {"role": "tool", **fields}])


URL = "messages[0].content[0].image_url.url"
CALL = "messages[1].tool_calls[0]"

INVALID = [
    pytest.param([], None, id="body-list"),
    pytest.param("hello", None, id="body-string"),
    pytest.param(None, None, id="body-null"),
    pytest.param({"messages": HI}, "model", id="model-missing"),
    pytest.param(body(model=5), "model", id="model-number"),
    pytest.param(body(model="  "), "model", id="model-blank"),
    pytest.param({"model": "m"}, "messages", id="messages-missing"),
    pytest.param(body(messages=[]), "messages", id="messages-empty"),
    pytest.param(body(messages="hi"), "messages", id="messages-string"),
    pytest.param(body(messages=[{"role": "system", "content": "x"}]), "messages", id="messages-only-system"),
    pytest.param(body(messages=[1]), "messages[0]", id="message-number"),
    pytest.param(body(messages=[{"content": "hi"}]), "messages[0].role", id="role-missing"),
    pytest.param(body(messages=[{"role": "bot", "content": "hi"}]), "messages[0].role", id="role-unknown"),
    pytest.param(body(messages=[{"role": ["user"], "content": "hi"}]), "messages[0].role", id="role-list"),
    pytest.param(user(5), "messages[0].content", id="user-content-number"),
    pytest.param(user(None), "messages[0].content", id="user-content-null"),
    pytest.param(user({"type": "text", "text": "hi"}), "messages[0].content", id="user-content-object"),
    pytest.param(user(["hi"]), "messages[0].content[0]", id="user-part-string"),
    pytest.param(user([{"text": "hi"}]), "messages[0].content[0].type", id="user-part-type-missing"),
    pytest.param(user([{"type": "text", "text": 5}]), "messages[0].content[0].text", id="user-text-number"),
    pytest.param(user([{"type": "input_audio", "input_audio": {}}]), "messages[0].content[0]", id="user-audio"),
    pytest.param(user([{"type": "file", "file": {}}]), "messages[0].content[0]", id="user-file"),
    pytest.param(user([{"type": "video", "video": {}}]), "messages[0].content[0]", id="user-part-unknown"),
    pytest.param(image(5), URL, id="image-url-number"),
    pytest.param(user([{"type": "image_url"}]), "messages[0].content[0].image_url", id="image-url-missing"),
    pytest.param(image("ftp://example.com/a.png"), URL, id="image-ftp"),
    pytest.param(image("data:image/png;base64"), URL, id="data-url-no-comma"),
    pytest.param(image(f"data:image/png,{PNG}"), URL, id="data-url-not-base64"),
    pytest.param(image("data:image/png;base64,@@@@"), URL, id="data-url-bad-base64"),
    pytest.param(image("data:image/png;base64,iVBORw0KGgo"), URL, id="data-url-bad-padding"),
    pytest.param(image("data:text/plain;base64,aGk="), URL, id="data-url-not-image"),
    pytest.param(image("data:image/png;base64,"), URL, id="data-url-empty"),
    pytest.param(body(messages=[{"role": "system"}, *HI]), "messages[0].content", id="system-no-content"),
    pytest.param(
        body(messages=[{"role": "developer", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, *HI]),
        "messages[0].content[0]",
        id="developer-image",
    ),
    pytest.param(body(messages=[*HI, {"role": "assistant", "content": 5}]), "messages[1].content", id="assistant-num"),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
        "messages[1].content[0]",
        id="assistant-image-part",
    ),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "content": "", "reasoning_content": 5}]),
        "messages[1].reasoning_content",
        id="assistant-reasoning-number",
    ),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "content": "", "refusal": True}]),
        "messages[1].refusal",
        id="assistant-refusal-bool",
    ),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "content": None, "tool_calls": {"id": "c1"}}]),
        "messages[1].tool_calls",
        id="tool-calls-object",
    ),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "content": None, "tool_calls": ["c1"]}]),
        CALL,
        id="tool-call-string",
    ),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "a"}}]}]),
        f"{CALL}.id",
        id="tool-call-id-missing",
    ),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}]),
        f"{CALL}.type",
        id="tool-call-custom",
    ),
    pytest.param(
        body(messages=[*HI, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]),
        f"{CALL}.function",
        id="tool-call-function-missing",
    ),
    pytest.param(call(arguments="{}"), f"{CALL}.function.name", id="tool-call-name-missing"),
    pytest.param(call(name="a", arguments={"x": 1}), f"{CALL}.function.arguments", id="tool-call-args-object"),
    pytest.param(tool_message(content="ok"), "messages[1].tool_call_id", id="tool-result-id-missing"),
    pytest.param(tool_message(tool_call_id=7, content="ok"), "messages[1].tool_call_id", id="tool-result-id-number"),
    pytest.param(tool_message(tool_call_id="c1"), "messages[1].content", id="tool-result-content-missing"),
    pytest.param(
        tool_message(tool_call_id="c1", content=[{"type": "image_url", "image_url": {"url": "x"}}]),
        "messages[1].content[0]",
        id="tool-result-image",
    ),
    pytest.param(body(messages=[*HI, {"role": "function", "content": "x"}]), "messages[1].name", id="function-no-name"),
    pytest.param(body(tools={"weather": {}}), "tools", id="tools-object"),
    pytest.param(body(tools=["weather"]), "tools[0]", id="tool-string"),
    pytest.param(body(tools=[{"type": "web_search"}]), "tools[0].type", id="tool-web-search"),
    pytest.param(body(tools=[{"type": "function"}]), "tools[0].function", id="tool-function-missing"),
    pytest.param(body(tools=[{"type": "function", "function": {}}]), "tools[0].function.name", id="tool-no-name"),
    pytest.param(
        body(tools=[{"type": "function", "function": {"name": "a", "parameters": []}}]),
        "tools[0].function.parameters",
        id="tool-parameters-list",
    ),
    pytest.param(
        body(tools=[{"type": "function", "function": {"name": "a", "description": 5}}]),
        "tools[0].function.description",
        id="tool-description-number",
    ),
    pytest.param(body(functions="weather"), "functions", id="functions-string"),
    pytest.param(body(functions=[{"description": "x"}]), "functions[0].name", id="function-def-no-name"),
    pytest.param(body(tool_choice="sometimes"), "tool_choice", id="tool-choice-unknown"),
    pytest.param(body(tool_choice=5), "tool_choice", id="tool-choice-number"),
    pytest.param(body(tool_choice={"type": "function"}), "tool_choice", id="tool-choice-no-function"),
    pytest.param(
        body(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "time"}}),
        "tool_choice.function.name",
        id="tool-choice-unknown-tool",
    ),
    pytest.param(body(function_call="required"), "function_call", id="legacy-function-call-required"),
    pytest.param(body(max_tokens=0), "max_tokens", id="max-tokens-zero"),
    pytest.param(body(max_tokens=-5), "max_tokens", id="max-tokens-negative"),
    pytest.param(body(max_tokens="100"), "max_tokens", id="max-tokens-string"),
    pytest.param(body(max_tokens=True), "max_tokens", id="max-tokens-bool"),
    pytest.param(body(max_tokens=10.5), "max_tokens", id="max-tokens-float"),
    pytest.param(body(max_completion_tokens=0, max_tokens=10), "max_completion_tokens", id="max-completion-zero"),
    pytest.param(body(stream="yes"), "stream", id="stream-string"),
    pytest.param(body(stream_options="usage"), "stream_options", id="stream-options-string"),
    pytest.param(body(stream_options={"include_usage": 1}), "stream_options.include_usage", id="include-usage-int"),
    pytest.param(body(reasoning_effort="extreme"), "reasoning_effort", id="effort-unknown"),
    pytest.param(body(reasoning_effort=3), "reasoning_effort", id="effort-number"),
    pytest.param(body(n=2), "n", id="n-two"),
    pytest.param(body(n=0), "n", id="n-zero"),
    pytest.param(body(n="1"), "n", id="n-string"),
]


@pytest.mark.parametrize(("raw", "param"), INVALID)
def test_openai_to_chat_rejects_bad_request(raw: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_to_chat(raw)
    assert caught.value.param == param
    assert caught.value.status == 400
    # The message is a sentence that names the field, so a person can find it in their request.
    assert caught.value.message.endswith(".")
    if param is not None:
        assert param.split(".")[0].split("[")[0] in caught.value.message


def test_openai_to_chat_bad_image_is_unsupported_image() -> None:
    with pytest.raises(UnsupportedImage) as caught:
        openai_to_chat(image("data:image/png;base64,@@@@"))
    assert caught.value.code == "unsupported_image"


def test_openai_to_chat_error_message_names_containers_instead_of_printing_them() -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_to_chat(body(messages=[{"role": {"nested": ["x" * 10_000]}, "content": "hi"}]))
    assert "an object" in caught.value.message
    assert "xxx" not in caught.value.message


def test_openai_to_chat_error_message_truncates_huge_values() -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_to_chat(body(reasoning_effort="x" * 10_000))
    assert len(caught.value.message) < 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually `valid`, now and then any JSON value in its place."""
    return st.integers(0, 9).flatmap(lambda roll: json_values if roll == 0 else valid)


# Near-valid bodies: mostly well-formed, with garbage here and there, so the deep checks run too.
urls = st.sampled_from([f"data:image/png;base64,{PNG}", "data:image/png;base64,@@", "https://x.test/a.png", "ftp://x"])
parts = st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["text", "image_url", "refusal", "file"]))},
    optional={
        "text": mostly(st.text(max_size=5)),
        "refusal": st.text(max_size=5),
        "image_url": mostly(st.fixed_dictionaries({"url": mostly(urls)})),
    },
)
function = st.fixed_dictionaries(
    {"name": mostly(st.sampled_from(["a", "b"])), "arguments": mostly(st.text(max_size=3))}
)
calls = st.fixed_dictionaries(
    {"id": mostly(st.text(max_size=3))}, optional={"type": mostly(st.just("function")), "function": mostly(function)}
)
messages = st.fixed_dictionaries(
    {
        "role": mostly(st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])),
        "content": mostly(st.text(max_size=5) | st.lists(parts, max_size=3)),
    },
    optional={
        "tool_calls": mostly(st.lists(calls, max_size=2)),
        "tool_call_id": mostly(st.text(max_size=3)),
        "name": mostly(st.sampled_from(["a", "b"])),
        "reasoning_content": mostly(st.text(max_size=3)),
        "function_call": mostly(function),
    },
)
tool = st.fixed_dictionaries(
    {"type": mostly(st.just("function"))},
    optional={"function": mostly(st.fixed_dictionaries({"name": mostly(st.sampled_from(["a", "b"]))}))},
)
options = {
    "tools": mostly(st.lists(tool, max_size=2)),
    "functions": mostly(st.lists(function, max_size=2)),
    "tool_choice": mostly(
        st.sampled_from(["auto", "none", "required"])
        | st.builds(lambda f: {"type": "function", "function": f}, function)
    ),
    "function_call": mostly(st.sampled_from(["auto", "none"])),
    "max_tokens": mostly(st.integers()),
    "max_completion_tokens": mostly(st.integers()),
    "stream": mostly(st.booleans()),
    "stream_options": mostly(st.fixed_dictionaries({"include_usage": mostly(st.booleans())})),
    "reasoning_effort": mostly(st.sampled_from(["low", "xhigh", "none"])),
    "n": mostly(st.just(1)),
}
near_valid_bodies = st.fixed_dictionaries(
    {"model": st.just("claude-sonnet-4.5"), "messages": st.lists(messages, min_size=1, max_size=4)},
    optional=options,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, near_valid_bodies))
def test_openai_to_chat_any_json_gives_request_or_invalid_request(raw: Any) -> None:
    try:
        result = openai_to_chat(raw)
    except InvalidRequest as error:
        assert error.message
    else:
        assert isinstance(result, ChatRequest)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (body(stream=True, stream_options={"include_usage": True}), True),
        (body(stream=True, stream_options={"include_usage": False}), False),
        (body(stream=True), False),
        (body(stream_options="yes"), False),
        ([], False),
    ],
)
def test_openai_include_usage_reads_stream_options(raw: Any, expected: bool) -> None:
    assert openai_include_usage(raw) is expected


# --- streaming -------------------------------------------------------------------------------


def stream(events: list[StreamEvent], *, include_usage: bool = True) -> list[dict[str, Any]]:
    encoder = OpenAIStreamEncoder(
        model="claude-sonnet-4.5", completion_id="chatcmpl-1", created=1700, include_usage=include_usage
    )
    chunks = encoder.start()
    for event in events:
        chunks.extend(encoder.encode(event))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert (chunk["id"], chunk["object"], chunk["created"], chunk["model"]) == (
            "chatcmpl-1",
            "chat.completion.chunk",
            1700,
            "claude-sonnet-4.5",
        )
    return chunks


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]


def test_stream_encoder_start_announces_assistant_role() -> None:
    chunks = stream([])
    assert deltas(chunks) == [{"role": "assistant", "content": ""}]
    assert chunks[0]["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "finish_reason": None,
        "logprobs": None,
    }


def test_stream_encoder_text_then_finish_then_usage() -> None:
    chunks = stream([TextDelta("Hel"), TextDelta(""), TextDelta("lo"), Usage(12, 3), Finish("end_turn")])
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": "lo"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, None, None, "stop"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_encoder_without_include_usage_sends_no_usage() -> None:
    chunks = stream([TextDelta("hi"), Usage(1, 1), Finish("end_turn")], include_usage=False)
    assert all(chunk["choices"] for chunk in chunks)
    assert all("usage" not in chunk for chunk in chunks)


def test_stream_encoder_usage_chunk_has_zeros_when_usage_never_came() -> None:
    chunks = stream([TextDelta("hi"), Finish("end_turn")])
    assert chunks[-1]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_stream_encoder_thinking_goes_to_reasoning_content() -> None:
    chunks = stream([ThinkingDelta("Let me think"), ThinkingDelta("."), TextDelta("42"), Finish("end_turn")])
    assert deltas(chunks)[1:] == [
        {"reasoning_content": "Let me think"},
        {"reasoning_content": "."},
        {"content": "42"},
        {},
    ]


def test_stream_encoder_two_tool_calls_are_indexed_in_order() -> None:
    events: list[StreamEvent] = [
        TextDelta("Checking."),
        ToolCall("tooluse_a", "weather", '{"city":"Oslo"}'),
        ToolCall("tooluse_b", "time", "{}"),
        Usage(5, 9),
        Finish("tool_use"),
    ]
    chunks = stream(events)
    assert deltas(chunks)[2:6] == [
        {
            "tool_calls": [
                {"index": 0, "id": "tooluse_a", "type": "function", "function": {"name": "weather", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "tooluse_b", "type": "function", "function": {"name": "time", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_encoder_three_tool_calls_count_indexes_up() -> None:
    calls = [ToolCall(f"tooluse_{n}", "read", f'{{"n":{n}}}') for n in range(4)]
    chunks = stream([*calls, Finish("tool_use")], include_usage=False)
    indexes = [(d["tool_calls"][0]["index"], "id" in d["tool_calls"][0]) for d in deltas(chunks) if "tool_calls" in d]
    # Each call is announced (with its id) and then given its arguments under one index of its own.
    assert indexes == [(0, True), (0, False), (1, True), (1, False), (2, True), (2, False), (3, True), (3, False)]


def test_stream_encoder_sends_no_chunk_for_empty_thinking() -> None:
    chunks = stream([ThinkingDelta(""), ThinkingDelta("a"), ThinkingDelta(""), Finish("end_turn")], include_usage=False)
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"reasoning_content": "a"}, {}]


@pytest.mark.parametrize(
    ("reason", "with_tool_call", "expected"),
    [
        ("end_turn", False, "stop"),
        ("tool_use", True, "tool_calls"),
        ("max_tokens", False, "length"),
        ("content_filter", False, "content_filter"),
        # Agents only run tools on `tool_calls`, whatever Kiro said.
        ("end_turn", True, "tool_calls"),
        # A cut-off tool call must not be run: `length` wins.
        ("max_tokens", True, "length"),
    ],
)
def test_stream_encoder_finish_reason(reason: StopReason, with_tool_call: bool, expected: str) -> None:
    events: list[StreamEvent] = [ToolCall("t", "f", "{}")] if with_tool_call else [TextDelta("x")]
    chunks = stream([*events, Finish(reason)], include_usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] == expected
    completion = openai_completion([*events, Finish(reason)], model="m", completion_id="c", created=1)
    assert completion["choices"][0]["finish_reason"] == expected


def test_stream_encoder_ignores_events_after_finish() -> None:
    chunks = stream([TextDelta("a"), Finish("end_turn"), TextDelta("late"), Finish("end_turn")], include_usage=False)
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "a"}, {}]


def test_stream_encoder_output_reassembles_in_openai_sdk() -> None:
    text = ["Zürich ", "天気", " 🌧", "\n\n", "\n\n", "done"]
    arguments = ['{"city": "Zürich", "note": "a \\"quoted\\" \\u00e9"}', '{"cmd": "ls -la\\n"}']
    events: list[StreamEvent] = [ThinkingDelta("hmm "), ThinkingDelta("ok")]
    events += [TextDelta(piece) for piece in text]
    events += [ToolCall("tooluse_1", "weather", arguments[0]), ToolCall("tooluse_2", "bash", arguments[1])]
    events += [Usage(100, 20), Finish("tool_use")]
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in stream(events):
        list(state.handle_chunk(ChatCompletionChunk.model_validate(chunk)))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "".join(text)
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []] == [
        ("tooluse_1", "weather", arguments[0]),
        ("tooluse_2", "bash", arguments[1]),
    ]
    assert message.model_extra is not None and message.model_extra.get("reasoning_content") == "hmm ok"
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 120


# --- one completion --------------------------------------------------------------------------


def completion(events: list[StreamEvent]) -> dict[str, Any]:
    result = openai_completion(events, model="claude-sonnet-4.5", completion_id="chatcmpl-9", created=1800)
    ChatCompletion.model_validate(result)
    assert (result["id"], result["object"], result["created"], result["model"]) == (
        "chatcmpl-9",
        "chat.completion",
        1800,
        "claude-sonnet-4.5",
    )
    return result


def test_openai_completion_text() -> None:
    result = completion([TextDelta("Hello"), TextDelta(" there"), Usage(7, 2), Finish("end_turn")])
    assert result["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert result["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def test_openai_completion_tool_calls_only_has_null_content() -> None:
    result = completion([ToolCall("tooluse_1", "weather", '{"city":"Oslo"}'), Usage(3, 4), Finish("tool_use")])
    message = result["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "tooluse_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
    ]
    assert result["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_completion_text_thinking_and_tool_call() -> None:
    events: list[StreamEvent] = [
        ThinkingDelta("Need "),
        ThinkingDelta("weather."),
        TextDelta("Let me check."),
        ToolCall("t1", "weather", "{}"),
        Finish("tool_use"),
    ]
    message = completion(events)["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert message["reasoning_content"] == "Need weather."
    assert len(message["tool_calls"]) == 1


def test_openai_completion_empty_stream_is_empty_text_with_zero_usage() -> None:
    result = completion([Finish("end_turn")])
    assert result["choices"][0]["message"]["content"] == ""
    assert "tool_calls" not in result["choices"][0]["message"]
    assert result["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


# --- errors and models -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            InvalidRequest("`n` must be 1.", param="n"),
            {"message": "`n` must be 1.", "type": "invalid_request_error", "param": "n", "code": None},
        ),
        (
            QuotaExceeded("Your Kiro quota is used up."),
            {
                "message": "Your Kiro quota is used up.",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            },
        ),
        (
            KiroLoginRequired("Log in to Kiro again.", code="kiro_token_expired"),
            {
                "message": "Log in to Kiro again.",
                "type": "permission_error",
                "param": None,
                "code": "kiro_token_expired",
            },
        ),
    ],
)
def test_openai_error_body_maps_error_fields(error: Ki2apiError, expected: dict[str, Any]) -> None:
    result = openai_error_body(error)
    assert result == {"error": expected}
    ErrorObject.model_validate(result["error"])
    json.dumps(result)


def test_openai_model_list_shape() -> None:
    sonnet = ModelInfo("claude-sonnet-4.6", max_input_tokens=1_000_000)
    result = openai_model_list([("claude-sonnet-4.6", sonnet), ("claude-sonnet-4-6", sonnet)], created=1700)
    assert result["object"] == "list"
    models = [Model.model_validate(item) for item in result["data"]]
    assert [(m.id, m.object, m.created) for m in models] == [
        ("claude-sonnet-4.6", "model", 1700),
        ("claude-sonnet-4-6", "model", 1700),
    ]
    assert [(m["context_length"], m["kiro_model"]) for m in result["data"]] == [(1_000_000, "claude-sonnet-4.6")] * 2

"""How a request's answer is planned and read back (core/answer_plan.py), and the fields that lead there."""

from __future__ import annotations

from typing import Any

import pytest

from ki2api_tray.core.answer_plan import ANSWER_TOOL, AnswerTool, plan_answer, read_answer
from ki2api_tray.core.anthropic_format import anthropic_to_chat
from ki2api_tray.core.errors import InvalidRequest
from ki2api_tray.core.model import (
    ChatRequest,
    Finish,
    Message,
    ResponseFormat,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)
from ki2api_tray.core.openai_format import openai_to_chat

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}
WEATHER = ToolSpec("get_weather", "weather", {"type": "object"})


def chat(**kwargs: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message("user", (TextPart("hi"),)),), **kwargs)


def test_no_format_and_no_forced_tool_needs_nothing_held_back() -> None:
    plan = plan_answer(chat(tools=(WEATHER,)))
    assert not plan.needs_whole_answer and plan.answer_tool is None


def test_forced_tool_choice_is_held_back_for_a_retry() -> None:
    plan = plan_answer(chat(tools=(WEATHER,), tool_choice=ToolChoice("any")))
    assert plan.forced and plan.needs_whole_answer
    retried, reminder = plan.retry()
    assert retried.tools == (WEATHER,) and "Do not answer in plain text" in reminder


def test_named_tool_retry_keeps_only_that_tool() -> None:
    other = ToolSpec("get_time", "time", {"type": "object"})
    plan = plan_answer(chat(tools=(WEATHER, other), tool_choice=ToolChoice("tool", "get_time")))
    retried, reminder = plan.retry()
    assert retried.tools == (other,) and "`get_time`" in reminder


def test_format_alone_forces_the_answer_tool() -> None:
    plan = plan_answer(chat(response_format=ResponseFormat(SCHEMA, name="Thing")))
    assert plan.answer_tool == AnswerTool(ANSWER_TOOL, wrapped=False)
    assert [t.name for t in plan.chat.tools] == [ANSWER_TOOL]
    assert plan.chat.tools[0].parameters == SCHEMA and "Thing" in plan.chat.tools[0].description
    assert plan.chat.tool_choice == ToolChoice("tool", ANSWER_TOOL)
    _, reminder = plan.retry("at $.a: 'x' is not of type 'integer'")
    assert "$.a" in reminder


def test_format_with_client_tools_asks_for_any_tool() -> None:
    plan = plan_answer(chat(tools=(WEATHER,), response_format=ResponseFormat(SCHEMA)))
    assert [t.name for t in plan.chat.tools] == ["get_weather", ANSWER_TOOL]
    assert plan.chat.tool_choice == ToolChoice("any")


def test_format_with_tool_choice_none_offers_only_the_answer_tool() -> None:
    plan = plan_answer(chat(tools=(WEATHER,), tool_choice=ToolChoice("none"), response_format=ResponseFormat(SCHEMA)))
    assert [t.name for t in plan.chat.tools] == [ANSWER_TOOL]


def test_answer_tool_name_avoids_a_client_tool_of_that_name() -> None:
    mine = ToolSpec(ANSWER_TOOL, "the client's own", {"type": "object"})
    plan = plan_answer(chat(tools=(mine,), response_format=ResponseFormat(SCHEMA)))
    assert plan.answer_tool is not None and plan.answer_tool.name == f"{ANSWER_TOOL}_2"


def test_non_object_schema_is_wrapped() -> None:
    plan = plan_answer(chat(response_format=ResponseFormat({"type": "array"})))
    assert plan.answer_tool == AnswerTool(ANSWER_TOOL, wrapped=True)
    assert plan.chat.tools[0].parameters["properties"]["value"] == {"type": "array"}


def test_allowed_tools_filter_what_is_offered() -> None:
    other = ToolSpec("get_time", "time", {"type": "object"})
    plan = plan_answer(chat(tools=(WEATHER, other), tool_choice=ToolChoice("auto", allowed=("get_time",))))
    assert plan.chat.tools == (other,)


END = (Usage(1, 2), Finish("tool_use"))
TOOL = AnswerTool(ANSWER_TOOL, wrapped=False)


@pytest.mark.parametrize(
    ("events", "candidate", "called"),
    [
        pytest.param([TextDelta("Sure."), ToolCall("c", ANSWER_TOOL, '{"a": 1}')], '{"a": 1}', False, id="answer-tool"),
        pytest.param([ToolCall("c", "get_weather", "{}")], None, True, id="client-tool"),
        pytest.param([TextDelta('```json\n{"a": 2}\n```')], '{"a": 2}', False, id="fenced-text"),
        pytest.param([TextDelta('The answer is {"a": 3}.')], '{"a": 3}', False, id="braces-in-prose"),
        pytest.param([TextDelta("")], None, False, id="nothing"),
    ],
)
def test_read_answer(events: list[Any], candidate: str | None, called: bool) -> None:
    reading = read_answer([*events, *END], TOOL)
    assert (reading.candidate, reading.called_tools) == (candidate, called)


def test_read_answer_unwraps_and_answered_keeps_thinking_and_usage() -> None:
    reading = read_answer([ThinkingDelta("hmm"), ToolCall("c", ANSWER_TOOL, '{"value": [1, 2]}'), *END],
                          AnswerTool(ANSWER_TOOL, wrapped=True))  # fmt: skip
    assert reading.candidate == "[1, 2]"
    assert reading.answered("[1,2]") == [ThinkingDelta("hmm"), TextDelta("[1,2]"), Usage(1, 2), Finish("end_turn")]


OPEN = {"type": "object"}
NAMED = {"name": "T", "schema": SCHEMA, "strict": True}
NAMED_FORMAT = ResponseFormat(SCHEMA, "T")
BASE = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"stop": "END"}, {"stop": ("END",)}),
        ({"stop": ["a", "", "b"]}, {"stop": ("a", "b")}),
        ({"response_format": {"type": "text"}}, {"response_format": None}),
        ({"response_format": {"type": "json_object"}}, {"response_format": ResponseFormat(OPEN, "json_object")}),
        ({"response_format": {"type": "json_schema", "json_schema": NAMED}}, {"response_format": NAMED_FORMAT}),
        ({"parallel_tool_calls": False}, {"parallel_tool_calls": False}),
    ],
)  # fmt: skip
def test_openai_fields(extra: dict[str, Any], expected: dict[str, Any]) -> None:
    parsed = openai_to_chat({**BASE, **extra})
    assert {key: getattr(parsed, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stop": 3}, "stop"),
        ({"stop": ["a"] * 5}, "stop"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"logprobs": True}, "logprobs"),
        ({"modalities": ["audio"]}, "modalities"),
        ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "x", "tools": []}}},
         "tool_choice.allowed_tools"),
    ],
)  # fmt: skip
def test_openai_field_errors(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_to_chat({**BASE, **extra})
    assert caught.value.param == param


def test_anthropic_fields() -> None:
    parsed = anthropic_to_chat(
        {
            **BASE,
            "max_tokens": 10,
            "stop_sequences": ["\n\nHuman:"],
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low", "x": 1},
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
            "temperature": 0.1,
            "top_k": 3,
        }
    )
    assert parsed.stop == ("\n\nHuman:",)
    assert parsed.response_format == ResponseFormat(SCHEMA, "json_schema")
    assert parsed.parallel_tool_calls is False
    assert parsed.dropped == ("output_config.x", "temperature", "top_k")

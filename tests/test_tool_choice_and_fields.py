"""Forced tool choice, one call at a time, allowed tools, and fields Kiro cannot honour (issue 16, items 4-5)."""

from __future__ import annotations

import json
import logging
from typing import Any

import anthropic
import openai
import pytest

from tests.fake_kiro import StreamReply, scenarios
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-20250514"


def function(name: str) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {
        "type": "function",
        "function": {"name": name, "description": f"{name} for a city", "parameters": parameters},
    }


TOOLS = [function("get_weather"), function("get_time")]
PARIS = '{"city": "Paris"}'


def prose(text: str = "It is probably sunny in Paris.") -> StreamReply:
    return StreamReply(scenarios.text(text) + scenarios.usage())


def calls(*names: str) -> StreamReply:
    events = [event for name in names for event in scenarios.tool_call(name, PARIS)]
    return StreamReply(events + scenarios.usage())


def kiro_content(proxy: Proxy, index: int = -1) -> str:
    body = proxy.kiro.fake.chat_requests()[index].json
    return str(body["conversationState"]["currentMessage"]["userInputMessage"]["content"])


def kiro_tool_names(proxy: Proxy, index: int = -1) -> set[str]:
    body = proxy.kiro.fake.chat_requests()[index].json
    context = body["conversationState"]["currentMessage"]["userInputMessage"].get("userInputMessageContext", {})
    return {spec["toolSpecification"]["name"] for spec in context.get("tools", [])}


def ask(proxy: Proxy, stream: bool, **kwargs: Any) -> tuple[str, str | None, list[str]]:
    """Text, finish reason and the names of the tool calls, through the OpenAI SDK."""
    client = proxy.openai(timeout=15.0)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    if not stream:
        choice = client.chat.completions.create(model=MODEL, messages=messages, **kwargs).choices[0]
        names = [call.function.name for call in choice.message.tool_calls or []]
        return choice.message.content or "", choice.finish_reason, names
    text, finish, names = "", None, []
    for chunk in client.chat.completions.create(model=MODEL, messages=messages, stream=True, **kwargs):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            names += [c.function.name for c in choice.delta.tool_calls or [] if c.function and c.function.name]
    return text, finish, names


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_required_tool_choice_retries_a_text_answer_once(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(prose(), calls("get_weather"))

    text, finish, names = ask(proxy, stream, tools=TOOLS, tool_choice="required")

    assert (text, finish, names) == ("", "tool_calls", ["get_weather"])  # the first attempt's prose never shows
    assert len(proxy.kiro.fake.chat_requests()) == 2
    assert "Do not answer in plain text" in kiro_content(proxy)
    assert kiro_tool_names(proxy) == {"get_weather", "get_time"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_named_tool_retry_declares_only_that_tool(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(prose(), calls("get_time"))
    choice = {"type": "function", "function": {"name": "get_time"}}

    _, finish, names = ask(proxy, stream, tools=TOOLS, tool_choice=choice)

    assert (finish, names) == ("tool_calls", ["get_time"])
    assert kiro_tool_names(proxy, 0) == {"get_weather", "get_time"}
    assert kiro_tool_names(proxy, 1) == {"get_time"}
    assert "`get_time`" in kiro_content(proxy, 1)


def test_a_tool_call_on_the_first_attempt_is_not_retried(proxy: Proxy) -> None:
    proxy.kiro.fake.script(calls("get_weather"))
    _, finish, names = ask(proxy, True, tools=TOOLS, tool_choice="required")
    assert (finish, names) == ("tool_calls", ["get_weather"])
    assert len(proxy.kiro.fake.chat_requests()) == 1


def test_text_twice_is_returned_with_stop_and_logged(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    proxy.kiro.fake.script(prose("first"), prose("I cannot call a tool for that."))

    with caplog.at_level(logging.WARNING, logger="ki2api_tray.kiro.answer"):
        text, finish, names = ask(proxy, False, tools=TOOLS, tool_choice="required")

    assert (text, finish, names) == ("I cannot call a tool for that.", "stop", [])
    assert "although a tool call was required" in caplog.text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_anthropic_any_tool_choice_is_enforced(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(prose(), calls("get_weather"))
    tools = [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}]
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": tools,
        "tool_choice": {"type": "any"},
    }
    client = proxy.anthropic(timeout=15.0)
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)

    assert [block.type for block in message.content] == ["tool_use"]
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_parallel_tool_calls_false_keeps_the_first_call(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(calls("get_weather", "get_time"))
    _, finish, names = ask(proxy, stream, tools=TOOLS, parallel_tool_calls=False)
    assert (finish, names) == ("tool_calls", ["get_weather"])


def test_parallel_tool_calls_default_keeps_every_call(proxy: Proxy) -> None:
    proxy.kiro.fake.script(calls("get_weather", "get_time"))
    assert ask(proxy, False, tools=TOOLS)[2] == ["get_weather", "get_time"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_anthropic_disable_parallel_tool_use(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(calls("get_weather", "get_time"))
    tools = [{"name": n, "description": n, "input_schema": {"type": "object"}} for n in ("get_weather", "get_time")]
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Weather and time?"}],
        "tools": tools,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    client = proxy.anthropic(timeout=15.0)
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert [block.name for block in message.content if block.type == "tool_use"] == ["get_weather"]


def test_allowed_tools_offers_only_those_tools(proxy: Proxy) -> None:
    proxy.kiro.fake.script(calls("get_time"))
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [function("get_time")]}}

    _, finish, names = ask(proxy, False, tools=TOOLS, tool_choice=choice)

    assert (finish, names) == ("tool_calls", ["get_time"])
    assert kiro_tool_names(proxy) == {"get_time"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"n": 2}, "n"),
    ],
)
def test_fields_whose_absence_changes_the_answer_are_refused(proxy: Proxy, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(proxy, False, extra_body=fields)
    assert caught.value.body["param"] == param  # type: ignore[index]
    assert proxy.kiro.fake.chat_requests() == []


def test_dropped_fields_are_listed_in_one_debug_line(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="ki2api_tray.kiro.answer"):
        ask(proxy, False, temperature=0.3, seed=7, top_p=0.9, logprobs=False, service_tier="auto")

    lines = [r.getMessage() for r in caplog.records if "cannot honour" in r.getMessage()]
    assert lines == ["fields Kiro cannot honour, not sent: seed, service_tier, temperature, top_p"]


def test_anthropic_dropped_fields_are_listed(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="ki2api_tray.kiro.answer"):
        proxy.anthropic().messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"temperature": 0.5, "top_k": 5},
        )
    assert "fields Kiro cannot honour, not sent: temperature, top_k" in caplog.text


def test_anthropic_error_for_bad_output_format(proxy: Proxy) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        proxy.anthropic().messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"output_config": {"format": {"type": "json_schema"}}},
        )
    assert "output_config.format" in caught.value.message


def test_json_round_trip_of_args(proxy: Proxy) -> None:
    proxy.kiro.fake.script(calls("get_weather"))
    client = proxy.openai()
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "w"}], tools=TOOLS, tool_choice="required"
    )
    assert json.loads(reply.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}

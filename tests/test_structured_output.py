"""Structured outputs through the official SDKs: a forced synthetic tool whose arguments become the text."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.fake_kiro import StreamReply, scenarios
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-20250514"
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "Person", "schema": PERSON, "strict": True}}
ADA = {"name": "Ada", "age": 36}
ANSWER_TOOL = "structured_answer"


def answer_call(arguments: dict[str, Any], lead: str = "Here it is.") -> StreamReply:
    events = scenarios.text(lead) + scenarios.tool_call(ANSWER_TOOL, json.dumps(arguments)) + scenarios.usage()
    return StreamReply(events)


def kiro_message(proxy: Proxy, index: int = -1) -> dict[str, Any]:
    body = proxy.kiro.fake.chat_requests()[index].json
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def kiro_tools(proxy: Proxy, index: int = -1) -> dict[str, Any]:
    specs = kiro_message(proxy, index).get("userInputMessageContext", {}).get("tools", [])
    return {spec["toolSpecification"]["name"]: spec["toolSpecification"] for spec in specs}


def openai_ask(proxy: Proxy, stream: bool, **kwargs: Any) -> tuple[str, str | None, list[Any]]:
    client = proxy.openai(timeout=15.0)
    messages = kwargs.pop("messages", [{"role": "user", "content": "Who wrote the first program?"}])
    if not stream:
        reply = client.chat.completions.create(model=MODEL, messages=messages, **kwargs)
        choice = reply.choices[0]
        return choice.message.content or "", choice.finish_reason, list(choice.message.tool_calls or [])
    text, finish, calls = "", None, []
    for chunk in client.chat.completions.create(model=MODEL, messages=messages, stream=True, **kwargs):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            calls += [call for call in choice.delta.tool_calls or [] if call.id]  # the head of each call
    return text, finish, calls


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_openai_json_schema_answer_is_the_tool_input_as_text(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(answer_call(ADA))

    text, finish, calls = openai_ask(proxy, stream, response_format=RESPONSE_FORMAT)

    assert json.loads(text) == ADA
    assert finish == "stop" and calls == []
    tool = kiro_tools(proxy)[ANSWER_TOOL]
    assert tool["inputSchema"]["json"]["properties"] == PERSON["properties"]
    assert f"calling the tool `{ANSWER_TOOL}`" in kiro_message(proxy)["content"]


def test_openai_sdk_parse_reads_the_answer(proxy: Proxy) -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    proxy.kiro.fake.script(answer_call(ADA))
    reply = proxy.openai().chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Who?"}], response_format=Person
    )
    assert reply.choices[0].message.parsed == Person(name="Ada", age=36)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_mismatch_is_retried_once_with_the_problem_named(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(answer_call({"name": "Ada", "age": "thirty-six"}), answer_call(ADA))

    text, finish, _ = openai_ask(proxy, stream, response_format=RESPONSE_FORMAT)

    assert json.loads(text) == ADA and finish == "stop"
    assert len(proxy.kiro.fake.chat_requests()) == 2
    retry = kiro_message(proxy)["content"]
    assert "$.age" in retry and "not usable" in retry


def test_a_second_mismatch_is_an_error_naming_the_path(proxy: Proxy) -> None:
    wrong = {"name": "Ada", "age": "thirty-six"}
    proxy.kiro.fake.script(answer_call(wrong), answer_call(wrong))

    with pytest.raises(openai.APIStatusError) as caught:
        openai_ask(proxy, False, response_format=RESPONSE_FORMAT)

    assert caught.value.status_code == 502
    assert "$.age" in caught.value.message and "JSON schema" in caught.value.message


def test_a_second_mismatch_in_a_stream_is_an_error_event(proxy: Proxy) -> None:
    wrong = {"name": "Ada"}
    proxy.kiro.fake.script(answer_call(wrong), answer_call(wrong))

    with pytest.raises(openai.APIError) as caught:
        openai_ask(proxy, True, response_format=RESPONSE_FORMAT)

    assert "'age' is a required property" in str(caught.value)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_json_object_accepts_a_fenced_text_answer(proxy: Proxy, stream: bool) -> None:
    fenced = 'Sure:\n```json\n{"answer": 42}\n```'
    proxy.kiro.fake.script(StreamReply(scenarios.text(*scenarios.pieces(fenced, 5)) + scenarios.usage()))

    text, finish, _ = openai_ask(proxy, stream, response_format={"type": "json_object"})

    assert json.loads(text) == {"answer": 42} and finish == "stop"
    assert kiro_tools(proxy)[ANSWER_TOOL]["inputSchema"]["json"]["type"] == "object"


def test_a_non_object_schema_is_wrapped_and_unwrapped(proxy: Proxy) -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    fmt = {"type": "json_schema", "json_schema": {"name": "names", "schema": schema}}
    proxy.kiro.fake.script(answer_call({"value": ["Ada", "Grace"]}))

    text, _, _ = openai_ask(proxy, False, response_format=fmt)

    assert json.loads(text) == ["Ada", "Grace"]
    assert kiro_tools(proxy)[ANSWER_TOOL]["inputSchema"]["json"]["properties"]["value"] == schema


def test_an_invalid_schema_is_a_400_before_kiro_is_asked(proxy: Proxy) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": 3}}}
    with pytest.raises(openai.BadRequestError) as caught:
        openai_ask(proxy, False, response_format=fmt)
    assert "not a valid JSON schema" in caught.value.message
    assert proxy.kiro.fake.chat_requests() == []


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_client_tools_work_alongside_the_answer_tool(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(
        StreamReply(scenarios.tool_call("get_weather", '{"city": "Paris"}') + scenarios.usage()), answer_call(ADA)
    )

    text, finish, calls = openai_ask(proxy, stream, response_format=RESPONSE_FORMAT, tools=[WEATHER])

    assert finish == "tool_calls" and len(calls) == 1
    assert set(kiro_tools(proxy)) == {"get_weather", ANSWER_TOOL}
    call_id = calls[0].id
    messages = [
        {"role": "user", "content": "Who wrote the first program?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
    ]  # fmt: skip
    text, finish, calls = openai_ask(proxy, stream, response_format=RESPONSE_FORMAT, tools=[WEATHER], messages=messages)
    assert json.loads(text) == ADA and finish == "stop" and calls == []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("where", ["output_format", "output_config"])
def test_anthropic_structured_output(proxy: Proxy, stream: bool, where: str) -> None:
    proxy.kiro.fake.script(answer_call(ADA))
    fmt = {"type": "json_schema", "schema": PERSON}
    extra = {"output_format": fmt} if where == "output_format" else {"output_config": {"format": fmt}}
    client = proxy.anthropic(timeout=15.0)
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Who?"}],
        "extra_body": extra,
    }

    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)

    assert [block.type for block in message.content] == ["text"]
    assert json.loads(message.content[0].text) == ADA
    assert message.stop_reason == "end_turn"


def test_anthropic_schema_mismatch_twice_is_an_error(proxy: Proxy) -> None:
    wrong = {"name": 7, "age": 1}
    proxy.kiro.fake.script(answer_call(wrong), answer_call(wrong))
    with pytest.raises(anthropic.APIStatusError) as caught:
        proxy.anthropic().messages.create(
            model=MODEL,
            max_tokens=100,
            messages=[{"role": "user", "content": "Who?"}],
            extra_body={"output_config": {"format": {"type": "json_schema", "schema": PERSON}}},
        )
    assert "$.name" in caught.value.message

"""The OpenAI Responses API (`POST /v1/responses`, what Codex speaks) through the official SDK to the fake Kiro.

Covers the streamed event sequence the SDK's `responses.stream()` helper accepts, the non-streamed Response
object, function-call round trips (arguments byte for byte as Kiro sent them), namespace and custom tools
mapped both ways, reasoning summaries, `previous_response_id` and the errors a client can act on.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from tests.fake_kiro import StreamReply, scenarios
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4.5"
WEATHER_ARGS = '{"city": "Paris",  "unit": "celsius", "note": "caf\\u00e9"}'
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def received(proxy: Proxy) -> dict[str, Any]:
    body = proxy.kiro.fake.chat_requests()[-1].json
    assert isinstance(body, dict)
    return body


def current(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def sent_tool_names(body: dict[str, Any]) -> list[str]:
    tools = current(body).get("userInputMessageContext", {}).get("tools", [])
    return [t["toolSpecification"]["name"] for t in tools]


def scripted_call(name: str, arguments: str) -> StreamReply:
    return StreamReply([*scenarios.text("Checking."), *scenarios.tool_call(name, arguments, 4), *scenarios.usage()])


def raw_events(proxy: Proxy, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE events as they arrive, each checked against the SDK's own event types."""
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    events: list[dict[str, Any]] = []
    with httpx.stream("POST", f"{proxy.url}/v1/responses", json={**body, "stream": True}, headers=headers) as reply:
        assert reply.status_code == 200, reply.read()
        name = None
        for line in reply.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                assert data["type"] == name
                events.append(data)
    return events


def test_non_streamed_text_answer(proxy: Proxy) -> None:
    response = proxy.openai().responses.create(model=MODEL, instructions="Be brief.", input="Hello there")

    assert response.status == "completed"
    # Kiro has no system role: the instructions ride on the user turn, so the fake echoes both.
    assert response.output_text.startswith("Echo: Be brief.") and response.output_text.endswith("Hello there")
    assert response.id.startswith("resp_")
    assert response.usage is not None and response.usage.output_tokens > 0
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    body = received(proxy)
    assert "Be brief." in current(body)["content"] and "Hello there" in current(body)["content"]


def test_streamed_events_follow_the_sdk_sequence(proxy: Proxy) -> None:
    client = proxy.openai()
    with client.responses.stream(model=MODEL, input=[{"role": "user", "content": "Stream me"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert final.output_text == "Echo: Stream me"
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") >= 2
    order = [k for k in kinds if k != "response.output_text.delta"]
    assert order == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    raw = raw_events(proxy, {"model": MODEL, "input": "Numbers"})
    assert [e["sequence_number"] for e in raw] == list(range(len(raw)))


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_round_trip(proxy: Proxy, stream: bool) -> None:
    client = proxy.openai()
    proxy.kiro.fake.script(scripted_call("get_weather", WEATHER_ARGS))
    request: dict[str, Any] = {"model": MODEL, "input": "Weather in Paris?", "tools": [WEATHER]}
    if stream:
        with client.responses.stream(**request) as events:
            seen = [event.type for event in events]
            first = events.get_final_response()
        assert "response.function_call_arguments.done" in seen
    else:
        first = client.responses.create(**request)

    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert call.arguments == WEATHER_ARGS  # byte for byte as Kiro sent it
    assert call.call_id

    follow_up = [
        {"role": "user", "content": "Weather in Paris?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees and sunny"},
    ]
    second = client.responses.create(model=MODEL, input=follow_up, tools=[WEATHER])

    assert second.output_text.startswith("Echo:")
    context = current(received(proxy))["userInputMessageContext"]
    [result] = context["toolResults"]
    assert result["toolUseId"] == call.call_id
    assert "18 degrees" in result["content"][0]["text"]
    history = received(proxy)["conversationState"]["history"]
    [tool_use] = history[-1]["assistantResponseMessage"]["toolUses"]
    assert tool_use["name"] == "get_weather" and tool_use["input"] == json.loads(WEATHER_ARGS)
    assert proxy.kiro.fake.rejections == []


NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent",
    "description": "Tools for sub-agents.",
    "tools": [
        {"type": "function", "name": "spawn_agent", "description": "Start one.", "parameters": {"type": "object"}},
        {"type": "function", "name": "wait_agent", "description": "Wait for one."},
    ],
}
PATCH_TOOL = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch.",
    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch"'},
}


@pytest.mark.parametrize("stream", [False, True])
def test_namespace_tools_are_flattened_and_mapped_back(proxy: Proxy, stream: bool) -> None:
    client = proxy.openai()
    proxy.kiro.fake.script(scripted_call("multi_agent__spawn_agent", '{"task": "lint"}'))
    request: dict[str, Any] = {"model": MODEL, "input": "Spawn a linter", "tools": [WEATHER, NAMESPACE]}
    if stream:
        with client.responses.stream(**request) as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(**request)

    assert sent_tool_names(received(proxy)) == ["get_weather", "multi_agent__spawn_agent", "multi_agent__wait_agent"]
    [call] = [item for item in response.output if item.type == "function_call"]
    assert (call.namespace, call.name, call.arguments) == ("multi_agent", "spawn_agent", '{"task": "lint"}')

    # Codex sends the call back with its namespace; Kiro must see the same flat name in history.
    follow_up = [
        {"role": "user", "content": "Spawn a linter"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "agent 7 started"},
    ]
    client.responses.create(model=MODEL, input=follow_up, tools=[WEATHER, NAMESPACE])
    [tool_use] = received(proxy)["conversationState"]["history"][-1]["assistantResponseMessage"]["toolUses"]
    assert tool_use["name"] == "multi_agent__spawn_agent"
    assert proxy.kiro.fake.rejections == []


def test_custom_tool_takes_free_text_both_ways(proxy: Proxy) -> None:
    client = proxy.openai()
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    proxy.kiro.fake.script(scripted_call("apply_patch", json.dumps({"input": patch})))

    with client.responses.stream(model=MODEL, input="Add a file", tools=[PATCH_TOOL]) as events:
        kinds = [event.type for event in events]
        response = events.get_final_response()

    assert "response.custom_tool_call_input.done" in kinds
    [call] = [item for item in response.output if item.type == "custom_tool_call"]
    assert (call.name, call.input) == ("apply_patch", patch)
    spec = current(received(proxy))["userInputMessageContext"]["tools"][0]["toolSpecification"]
    assert spec["inputSchema"]["json"]["required"] == ["input"]
    assert "Begin Patch" in spec["inputSchema"]["json"]["properties"]["input"]["description"]

    follow_up = [
        {"role": "user", "content": "Add a file"},
        call.model_dump(exclude_none=True),
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"},
    ]
    client.responses.create(model=MODEL, input=follow_up, tools=[PATCH_TOOL])
    body = received(proxy)
    [tool_use] = body["conversationState"]["history"][-1]["assistantResponseMessage"]["toolUses"]
    assert tool_use["input"] == {"input": patch}
    assert current(body)["userInputMessageContext"]["toolResults"][0]["content"][0]["text"] == "Done!"


def test_built_in_tools_are_left_out(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    tools = [WEATHER, {"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "code_interpreter"}]
    with caplog.at_level("INFO"):
        response = proxy.openai().responses.create(model=MODEL, input="hi", tools=tools)  # type: ignore[arg-type]

    assert response.status == "completed"
    assert sent_tool_names(received(proxy)) == ["get_weather"]
    assert "file_search" in caplog.text and "code_interpreter" in caplog.text


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_comes_back_as_summary_items(proxy: Proxy, stream: bool) -> None:
    client = proxy.openai()
    request: dict[str, Any] = {"model": MODEL, "input": "Think [[fake:thinking]]", "reasoning": {"effort": "high"}}
    if stream:
        with client.responses.stream(**request) as events:
            kinds = [event.type for event in events]
            response = events.get_final_response()
        assert "response.reasoning_summary_text.delta" in kinds
        assert kinds.index("response.reasoning_summary_part.done") < kinds.index("response.output_text.delta")
    else:
        response = client.responses.create(**request)

    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text == scenarios.THOUGHT
    assert message.type == "message" and response.output_text.startswith("Echo:")


def test_previous_response_id_continues_the_conversation(proxy: Proxy) -> None:
    client = proxy.openai()
    first = client.responses.create(model=MODEL, input="My name is Ada.")
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)

    assert second.previous_response_id == first.id
    history = received(proxy)["conversationState"]["history"]
    assert "My name is Ada." in history[0]["userInputMessage"]["content"]
    assert history[1]["assistantResponseMessage"]["content"] == first.output_text
    assert "What is my name?" in current(received(proxy))["content"]


def test_unknown_previous_response_id_is_a_clear_400(proxy: Proxy) -> None:
    client = proxy.openai()
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hi", previous_response_id="resp_nope")
    assert "resp_nope" in caught.value.message and "not found" in caught.value.message
    assert caught.value.param == "previous_response_id"

    unstored = client.responses.create(model=MODEL, input="hi", store=False)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="again", previous_response_id=unstored.id)
    assert len(proxy.kiro.fake.chat_requests()) == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL}, "input"),
        ({"model": MODEL, "input": []}, "input"),
        ({"model": MODEL, "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"model": MODEL, "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": MODEL, "input": "hi", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
        (
            {"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
    ],
)
def test_bad_input_is_a_400_in_openai_shape(proxy: Proxy, body: dict[str, Any], param: str) -> None:
    reply = httpx.post(f"{proxy.url}/v1/responses", json=body, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == param and error["message"]
    assert proxy.kiro.fake.chat_requests() == []


def test_a_stream_cut_by_kiro_ends_in_response_failed(proxy: Proxy) -> None:
    events = raw_events(proxy, {"model": MODEL, "input": "Break [[fake:long:400]] [[fake:disconnect]]"})
    assert events[-1]["type"] == "response.failed"
    failure = events[-1]["response"]
    assert failure["status"] == "failed" and failure["error"]["message"]
    assert "response.completed" not in [e["type"] for e in events]

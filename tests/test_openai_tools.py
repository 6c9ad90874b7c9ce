"""OpenAI tool calling end to end: the official SDK -> ki2api -> the strict fake Kiro, and back.

Arguments must reach the client byte for byte as Kiro produced them, history must round-trip as Kiro's
toolUses / toolResults without ever tripping its pairing rules, and long names must map both ways.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fake_kiro import StreamReply, scenarios
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4.5"
WEATHER_ARGS = '{"city": "Paris", "unit": "celsius"}'
# Spacing, escapes, a non-ASCII character and a trailing zero: any re-serialisation would change the bytes.
AWKWARD_ARGS = (
    '{"path": "src/caf\\u00e9.py", "content": "def f():\\n    return \\"d\\u00e9j\\u00e0 vu\\"\\n", "n": 1.50}'
)
LONG_TOOL = "mcp__github_enterprise_server__create_or_update_pull_request_review_comment_thread"


def function_tool(name: str, parameters: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    schema = parameters or {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {
        "type": "function",
        "function": {"name": name, "description": description or f"Run {name}.", "parameters": schema},
    }


WEATHER = function_tool("get_weather", description="Current weather for a city.")


def call_json(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """An assistant message's tool call, as a client sends it back in history."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def scripted_call(name: str, arguments: str, *, use_id: str | None = None, fragments: int = 5) -> StreamReply:
    return StreamReply(
        [*scenarios.text("Checking."), *scenarios.tool_call(name, arguments, fragments, use_id), *scenarios.usage()]
    )


def received(proxy: Proxy) -> dict[str, Any]:
    """The body of the last chat request the fake Kiro accepted."""
    body = proxy.kiro.fake.chat_requests()[-1].json
    assert isinstance(body, dict)
    return body


def current(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def sent_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tools = current(body).get("userInputMessageContext", {}).get("tools", [])
    return {t["toolSpecification"]["name"]: t["toolSpecification"] for t in tools}


@dataclass(frozen=True)
class Answer:
    """What a client ends up with, streamed or not: text, tool calls as (id, name, arguments), finish_reason."""

    content: str
    calls: tuple[tuple[str, str, str], ...]
    finish: str | None


def answer(client: Any, *, stream: bool, **kwargs: Any) -> Answer:
    if not stream:
        choice = client.chat.completions.create(**kwargs).choices[0]
        calls = tuple((c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or [])
        return Answer(choice.message.content or "", calls, choice.finish_reason)
    content: list[str] = []
    by_index: dict[int, list[str]] = {}
    finish: str | None = None
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            # The SDKs key accumulation on `index` and concatenate every field, as agents do.
            for tc in choice.delta.tool_calls or []:
                call = by_index.setdefault(tc.index, ["", "", ""])
                call[0] += tc.id or ""
                call[1] += (tc.function.name if tc.function else None) or ""
                call[2] += (tc.function.arguments if tc.function else None) or ""
            finish = choice.finish_reason or finish
    calls = tuple((c[0], c[1], c[2]) for _, c in sorted(by_index.items()))
    return Answer("".join(content), calls, finish)


# --- responses: Kiro's toolUseEvents -> tool_calls ---------------------------------------------------


def test_tool_call_arguments_byte_identical(proxy: Proxy) -> None:
    client = proxy.openai()
    call_id = "tooluse_abcdefghijklmnopqrstuv"
    request = {"model": MODEL, "messages": [{"role": "user", "content": "Weather?"}], "tools": [WEATHER]}
    cases = [(arguments, stream) for arguments in (WEATHER_ARGS, AWKWARD_ARGS, "{}") for stream in (False, True)]
    seen = {}
    for arguments, stream in cases:
        proxy.kiro.fake.script(scripted_call("get_weather", arguments, use_id=call_id))
        seen[arguments, stream] = answer(client, stream=stream, **request)

    assert seen == {
        (arguments, stream): Answer("Checking.", ((call_id, "get_weather", arguments),), "tool_calls")
        for arguments, stream in cases
    }


def test_tool_call_two_calls_keep_order_and_indexes(proxy: Proxy) -> None:
    second = '{"path": "README.md"}'
    events = [
        *scenarios.tool_call("get_weather", WEATHER_ARGS, tool_use_id="tooluse_first"),
        *scenarios.tool_call("read_file", second, tool_use_id="tooluse_second"),
        *scenarios.usage(),
    ]
    proxy.kiro.fake.script(StreamReply(events), StreamReply(events))
    tools = [WEATHER, function_tool("read_file", {"type": "object", "properties": {"path": {"type": "string"}}})]
    request = {"model": MODEL, "messages": [{"role": "user", "content": "Both please."}], "tools": tools}
    client = proxy.openai()

    expected = Answer(
        "", (("tooluse_first", "get_weather", WEATHER_ARGS), ("tooluse_second", "read_file", second)), "tool_calls"
    )
    assert answer(client, stream=False, **request) == expected
    assert answer(client, stream=True, **request) == expected


def test_tool_call_round_trip_through_the_sdk(proxy: Proxy) -> None:
    client = proxy.openai()
    for stream in (False, True):
        proxy.kiro.fake.script(scripted_call("get_weather", AWKWARD_ARGS, use_id=f"tooluse_trip_{stream}"))
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = answer(client, stream=stream, model=MODEL, messages=messages, tools=[WEATHER])
        [(call_id, name, arguments)] = first.calls
        # What an agent does next: replay the assistant turn as received, then add the tool's output.
        messages.append(
            {"role": "assistant", "content": first.content, "tool_calls": [call_json(call_id, name, arguments)]}
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "18 C"})
        second = answer(client, stream=stream, model=MODEL, messages=messages, tools=[WEATHER])

        assert second.finish == "stop", stream
        body = received(proxy)
        uses = body["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"]
        assert uses == [
            {"toolUseId": f"tooluse_trip_{stream}", "name": "get_weather", "input": json.loads(AWKWARD_ARGS)}
        ]
        results = current(body)["userInputMessageContext"]["toolResults"]
        assert [(r["toolUseId"], r["content"]) for r in results] == [(f"tooluse_trip_{stream}", [{"text": "18 C"}])]


def test_tool_call_async_client_stream(proxy: Proxy) -> None:
    proxy.kiro.fake.script(scripted_call("get_weather", WEATHER_ARGS, use_id="tooluse_async"))

    async def run() -> dict[str, str]:
        client = proxy.async_openai()
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER], stream=True
        )
        call = {"id": "", "arguments": ""}
        async for chunk in stream:
            deltas = [tc for choice in chunk.choices for tc in choice.delta.tool_calls or []]
            for tc in deltas:
                call["id"] += tc.id or ""
                call["arguments"] += (tc.function.arguments if tc.function else None) or ""
        await client.close()
        return call

    assert asyncio.run(run()) == {"id": "tooluse_async", "arguments": WEATHER_ARGS}


# --- requests: tools in, history round-trip ------------------------------------------------------------


def test_tools_sent_with_schema_cleaned(proxy: Proxy) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "query": {"type": "string", "description": "What to look for."},
            "filters": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "properties": {"lang": {"type": "string", "enum": ["py", "go"]}},
                "required": [],
            },
        },
        "required": ["query"],
    }
    proxy.openai().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Search."}],
        tools=[function_tool("search", schema, "Search the code base.")],
    )
    spec = sent_tools(received(proxy))["search"]
    assert spec["description"] == "Search the code base."
    assert spec["inputSchema"]["json"] == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for."},
            "filters": {"type": "object", "properties": {"lang": {"type": "string", "enum": ["py", "go"]}}},
        },
        "required": ["query"],
    }


def test_tools_over_long_description_is_accepted(proxy: Proxy) -> None:
    description = "Explains the tool in great detail. " * 400  # 14,000 characters; Kiro takes 10,000
    reply = proxy.openai().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hello"}],
        tools=[function_tool("explain", description=description)],
    )
    assert reply.choices[0].message.content == "Echo: hello"
    sent = sent_tools(received(proxy))["explain"]["description"]
    assert len(sent) <= 10_000
    assert sent.startswith(description[:5_000])


def test_tool_name_over_64_chars_is_shortened_stably_and_mapped_back(proxy: Proxy) -> None:
    client = proxy.openai()
    tools = [function_tool(LONG_TOOL), WEATHER]
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=tools)
    [short] = [name for name in sent_tools(received(proxy)) if name != "get_weather"]
    assert len(short) <= 64

    proxy.kiro.fake.script(scripted_call(short, WEATHER_ARGS, use_id="tooluse_long"))
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "go"}], tools=tools)
    [call] = reply.choices[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == (LONG_TOOL, WEATHER_ARGS)
    assert short in sent_tools(received(proxy)), "the short name must be the same in every request"

    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": "tooluse_long", "content": "comment posted"},
    ]
    client.chat.completions.create(model=MODEL, messages=history, tools=tools)
    uses = received(proxy)["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"]
    assert uses == [{"toolUseId": "tooluse_long", "name": short, "input": json.loads(WEATHER_ARGS)}]


def test_history_tool_round_trip_becomes_tool_uses_and_results(proxy: Proxy) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking both.",
            "tool_calls": [
                call_json("call_p", "get_weather", WEATHER_ARGS),
                call_json("call_r", "get_weather", '{"city":"Rome"}'),
            ],
        },
        {"role": "tool", "tool_call_id": "call_p", "content": "18 C, cloudy"},
        {"role": "tool", "tool_call_id": "call_r", "content": ""},
    ]
    reply = proxy.openai().chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])

    assert reply.choices[0].finish_reason == "stop"
    body = received(proxy)
    [user, assistant] = body["conversationState"]["history"]
    assert user["userInputMessage"]["content"].startswith("You are terse.")
    assert assistant["assistantResponseMessage"] == {
        "content": "Checking both.",
        "toolUses": [
            {"toolUseId": "call_p", "name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}},
            {"toolUseId": "call_r", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    results = current(body)["userInputMessageContext"]["toolResults"]
    assert [(r["toolUseId"], r["status"], r["content"][0]["text"]) for r in results] == [
        ("call_p", "success", "18 C, cloudy"),
        ("call_r", "success", "(empty result)"),
    ]


@pytest.mark.parametrize(
    ("messages", "kept_text"),
    [
        pytest.param(
            [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"id": "call_x", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                    ],
                },
                {"role": "user", "content": "never mind"},
            ],
            "get_weather",
            id="call-without-result",
        ),
        pytest.param(
            [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_gone", "content": "42 apples"}],
            "42 apples",
            id="result-without-call",
        ),
    ],
)
def test_history_orphans_become_text(proxy: Proxy, messages: list[dict[str, Any]], kept_text: str) -> None:
    reply = proxy.openai().chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])

    assert reply.choices[0].message.content.startswith("Echo: ")
    body = received(proxy)
    turns = [*body["conversationState"].get("history", []), {"userInputMessage": current(body)}]
    assert not any("toolUses" in t.get("assistantResponseMessage", {}) for t in turns)
    assert "toolResults" not in current(body).get("userInputMessageContext", {})
    assert kept_text in json.dumps(turns)


@pytest.mark.parametrize("declared", [[function_tool("write_file")], []], ids=["other-tool", "no-tools"])
def test_history_tool_not_declared_gets_stub_spec(proxy: Proxy, declared: list[dict[str, Any]]) -> None:
    messages = [
        {"role": "user", "content": "Show the readme."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call_json("call_1", "read_file", '{"path":"README"}')],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "# ki2api"},
    ]
    extra = {"tools": declared} if declared else {}
    proxy.openai().chat.completions.create(model=MODEL, messages=messages, **extra)

    body = received(proxy)
    assert "read_file" in sent_tools(body)
    assert body["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"][0]["name"] == "read_file"
    assert current(body)["userInputMessageContext"]["toolResults"][0]["toolUseId"] == "call_1"


def test_tool_choice_none_sends_no_tools_and_history_as_text(proxy: Proxy) -> None:
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call_json("call_1", "get_weather", WEATHER_ARGS)],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    proxy.openai().chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], tool_choice="none")

    body = received(proxy)
    assert sent_tools(body) == {}
    assert "toolUses" not in body["conversationState"]["history"][1]["assistantResponseMessage"]
    assert "sunny" in current(body)["content"]


def test_tool_choice_named_function_is_demanded(proxy: Proxy) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    proxy.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Paris"}], tools=[WEATHER], tool_choice=choice
    )
    body = received(proxy)
    assert "get_weather" in sent_tools(body)
    assert "get_weather" in current(body)["content"]


# --- fallbacks: bracket text and truncated calls --------------------------------------------------------


def test_bracket_text_call_becomes_tool_call(proxy: Proxy) -> None:
    prompt = 'Weather? [[fake:bracket:get_weather:{"city": "Paris"}]]'
    request = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "tools": [WEATHER]}
    client = proxy.openai()
    for stream in (False, True):
        got = answer(client, stream=stream, **request)
        [(call_id, name, arguments)] = got.calls
        assert (name, json.loads(arguments), got.finish) == ("get_weather", {"city": "Paris"}, "tool_calls"), stream
        assert got.content.strip() == "Let me check.", stream
        assert call_id, stream


def test_truncated_tool_call_ends_turn_without_broken_json(proxy: Proxy) -> None:
    prompt = "Write it. [[fake:truncated_tool:get_weather]]"
    request = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "tools": [WEATHER]}
    client = proxy.openai()
    for stream in (False, True):
        got = answer(client, stream=stream, **request)
        # Agents treat `length` as "output cut short" and retry; a call with half its JSON would be run broken.
        assert (got.calls, got.finish) == ((), "length"), stream
        assert "get_weather" in got.content and "cut off" in got.content, stream

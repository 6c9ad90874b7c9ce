"""The Anthropic Messages API end to end: the official SDK (and raw HTTP for exact wire shapes) -> ki2api ->
the strict fake Kiro. Covers the SSE event sequence, tool_use round trips, stop reasons, count_tokens, auth
and error shapes, and a Claude-Code-shaped request that must go through without a 4xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from ki2api_tray.api import responses
from ki2api_tray.config import DEFAULT_API_KEY
from tests.fake_kiro import TOO_LONG, ErrorReply, StreamReply, scenarios
from tests.fixtures_kiro import KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

MODEL = "claude-sonnet-4.5"
ARGS = '{"file_path": "/tmp/caf\\u00e9.txt", "content": "line 1\\nline \\"2\\"\\n", "mode": 420}'
CLAUDE_CODE_REQUEST = Path(__file__).with_name("claude_code_request.json")
LONG_MCP = "mcp__github_enterprise__create_pull_request_review_comment_with_code_suggestion"
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
# A request the fake answers with Kiro's error body for the HTTP status put in place of %s.
KIRO_ERROR = b'{"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "[[fake:error:%s]]"}]}'
WRITE_TOOL = {
    "name": "Write",
    "description": "Write a file.",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}, "mode": {"type": "integer"}},
        "required": ["file_path", "content"],
        "additionalProperties": False,
    },
}


@pytest.fixture
def raw(proxy: Proxy) -> Iterator[httpx.Client]:
    """Plain HTTP to the proxy, for byte-level shapes the SDK would hide."""
    with httpx.Client(base_url=proxy.url, headers=HEADERS, timeout=30) as client:
        yield client


@pytest.fixture
def no_retry_proxy(kiro_env: KiroEnv) -> Iterator[Proxy]:
    """The proxy without upstream retries, so scripted 429/5xx answers reach the client at once."""
    runtime = start_proxy(kiro_env, max_retries=0)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    finally:
        runtime.service.close()


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) for every SSE event in a response body."""
    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        name = next((line[len("event:") :].strip() for line in lines if line.startswith("event:")), "")
        data = "".join(line[len("data:") :].strip() for line in lines if line.startswith("data:"))
        if data:
            events.append((name, json.loads(data)))
    return events


def received(proxy: Proxy) -> dict[str, Any]:
    body = proxy.kiro.fake.chat_requests()[-1].json
    assert isinstance(body, dict)
    return body


def current(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def tool_reply(name: str, arguments: str, use_id: str = "tooluse_ABCDEFGHIJKLMNOPQRSTUV") -> StreamReply:
    events = [*scenarios.text("On it."), *scenarios.tool_call(name, arguments, 6, use_id), *scenarios.usage()]
    return StreamReply(events)


def claude_code_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(CLAUDE_CODE_REQUEST.read_text(encoding="utf-8"))
    return body


def sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """A raw request body as keyword arguments of `messages.create`; fields the SDK has no parameter for
    (such as `temperature`) travel in `extra_body`, exactly as they would on the wire. An explicit timeout stops
    the SDK refusing a non-streamed request with Claude Code's large max_tokens."""
    named = {"model", "max_tokens", "messages", "system", "tools", "metadata", "thinking"}
    return {
        **{k: v for k, v in body.items() if k in named},
        "extra_body": {k: v for k, v in body.items() if k not in named and k != "stream"},
        "timeout": 60,
    }


# --- plain text -------------------------------------------------------------------------------------


def test_messages_non_stream_text_stop_reason_and_usage(proxy: Proxy) -> None:
    message = proxy.anthropic().messages.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "hello"}]
    )
    assert [(b.type, b.text) for b in message.content] == [("text", "Echo: hello")]
    assert message.id.startswith("msg_")
    assert (message.role, message.model, message.stop_reason) == ("assistant", MODEL, "end_turn")
    # contextUsageEvent said 1.5% of the model's 200k window.
    assert message.usage.input_tokens == 3_000
    assert message.usage.output_tokens > 0


def test_messages_stream_full_event_sequence(proxy: Proxy, raw: httpx.Client) -> None:
    body = {"model": MODEL, "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": "hello there"}]}
    response = raw.post("/v1/messages", json=body)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    deltas = names.count("content_block_delta")
    assert deltas >= 2
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert (start["role"], start["content"], start["stop_reason"]) == ("assistant", [], None)
    assert events[2][1]["content_block"] == {"type": "text", "text": ""}
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "Echo: hello there"
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] > 0


def test_messages_stream_pings_while_kiro_is_silent(
    proxy: Proxy, raw: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(responses, "KEEPALIVE_SECONDS", 0.05)
    proxy.kiro.fake.script(StreamReply([*scenarios.text("Hold ", "on."), *scenarios.usage()], pause=(1, 0.5)))
    body = {"model": MODEL, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "wait"}]}
    names = [name for name, _ in sse_events(raw.post("/v1/messages", json=body).text)]

    first_delta = names.index("content_block_delta")
    assert "ping" in names[first_delta : names.index("message_stop")]
    assert names[-1] == "message_stop"


def test_messages_stream_sdk_final_message(proxy: Proxy) -> None:
    with proxy.anthropic().messages.stream(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: stream me"
    assert final.content[0].text == "Echo: stream me"
    assert final.stop_reason == "end_turn"


# --- tools ------------------------------------------------------------------------------------------


def test_tool_use_non_stream(proxy: Proxy) -> None:
    proxy.kiro.fake.script(tool_reply("Write", ARGS))
    message = proxy.anthropic().messages.create(
        model=MODEL, max_tokens=256, tools=[WRITE_TOOL], messages=[{"role": "user", "content": "save it"}]
    )
    assert message.stop_reason == "tool_use"
    text, tool_use = message.content
    assert (text.type, text.text) == ("text", "On it.")
    assert (tool_use.type, tool_use.id, tool_use.name) == ("tool_use", "tooluse_ABCDEFGHIJKLMNOPQRSTUV", "Write")
    assert tool_use.input == json.loads(ARGS)
    spec = current(received(proxy))["userInputMessageContext"]["tools"][0]["toolSpecification"]
    assert "additionalProperties" not in spec["inputSchema"]["json"]


def test_tool_use_stream_partial_json_is_byte_identical(proxy: Proxy, raw: httpx.Client) -> None:
    proxy.kiro.fake.script(tool_reply("Write", ARGS))
    body = {
        "model": MODEL,
        "max_tokens": 256,
        "stream": True,
        "tools": [WRITE_TOOL],
        "messages": [{"role": "user", "content": "save it"}],
    }
    events = sse_events(raw.post("/v1/messages", json=body).text)

    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert starts[1] == {"type": "tool_use", "id": "tooluse_ABCDEFGHIJKLMNOPQRSTUV", "name": "Write", "input": {}}
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 1)
    assert partial == ARGS
    assert next(d for n, d in events if n == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_tool_use_stream_sdk_accumulates_input(proxy: Proxy) -> None:
    proxy.kiro.fake.script(tool_reply("Write", ARGS))
    with proxy.anthropic().messages.stream(
        model=MODEL, max_tokens=256, tools=[WRITE_TOOL], messages=[{"role": "user", "content": "save it"}]
    ) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[1].input == json.loads(ARGS)
    assert final.stop_reason == "tool_use"


def test_tool_use_round_trip_through_the_sdk(proxy: Proxy) -> None:
    client = proxy.anthropic()
    for stream in (False, True):
        proxy.kiro.fake.script(tool_reply("Write", ARGS, f"tooluse_trip_{stream}"))
        messages: list[Any] = [{"role": "user", "content": "save it"}]
        request = {"model": MODEL, "max_tokens": 256, "tools": [WRITE_TOOL]}
        if stream:
            with client.messages.stream(messages=messages, **request) as events:
                first = events.get_final_message()
        else:
            first = client.messages.create(messages=messages, **request)
        tool_use = first.content[-1]
        # What an agent does next: replay the SDK's content blocks as they are, then answer the tool use.
        messages.append({"role": "assistant", "content": first.content})
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "ok"}]}
        )
        second = client.messages.create(messages=messages, **request)

        assert second.stop_reason == "end_turn", stream
        body = received(proxy)
        assistant = body["conversationState"]["history"][1]["assistantResponseMessage"]
        assert assistant == {
            "content": "On it.",
            "toolUses": [{"toolUseId": f"tooluse_trip_{stream}", "name": "Write", "input": json.loads(ARGS)}],
        }
        results = current(body)["userInputMessageContext"]["toolResults"]
        assert [(r["toolUseId"], r["status"]) for r in results] == [(f"tooluse_trip_{stream}", "success")]


def test_tool_use_fallbacks_bracket_text_and_truncated_call(proxy: Proxy) -> None:
    client = proxy.anthropic()
    bracket = client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[WRITE_TOOL],
        messages=[{"role": "user", "content": 'go [[fake:bracket:Write:{"file_path": "/a", "content": "b"}]]'}],
    )
    truncated = client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[WRITE_TOOL],
        messages=[{"role": "user", "content": "go [[fake:truncated_tool:Write]]"}],
    )

    assert [block.type for block in bracket.content] == ["text", "tool_use"]
    assert "[Called" not in bracket.content[0].text
    assert (bracket.content[1].name, bracket.content[1].input) == ("Write", {"file_path": "/a", "content": "b"})
    assert bracket.stop_reason == "tool_use"
    # A cut-off call is never handed over half-written: the turn ends as cut short, with a note saying why.
    assert [block.type for block in truncated.content] == ["text"]
    assert "cut off" in truncated.content[0].text
    assert truncated.stop_reason == "max_tokens"


def test_tool_result_round_trip_reaches_kiro_paired(proxy: Proxy) -> None:
    messages = [
        {"role": "user", "content": "save and check"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Saving."},
                {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"file_path": "/a", "content": "x"}},
                {"type": "tool_use", "id": "toolu_2", "name": "Write", "input": {"file_path": "/b", "content": "y"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "written"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "is_error": True,
                    "content": [{"type": "text", "text": "disk full"}],
                },
                {"type": "text", "text": "What happened?"},
            ],
        },
    ]
    message = proxy.anthropic().messages.create(model=MODEL, max_tokens=256, tools=[WRITE_TOOL], messages=messages)

    assert message.content[0].text == "Echo: What happened?"
    body = received(proxy)
    assistant = body["conversationState"]["history"][1]["assistantResponseMessage"]
    assert assistant["content"] == "Saving."
    assert [(u["toolUseId"], u["name"], u["input"]) for u in assistant["toolUses"]] == [
        ("toolu_1", "Write", {"file_path": "/a", "content": "x"}),
        ("toolu_2", "Write", {"file_path": "/b", "content": "y"}),
    ]
    results = current(body)["userInputMessageContext"]["toolResults"]
    assert [(r["toolUseId"], r["status"], r["content"]) for r in results] == [
        ("toolu_1", "success", [{"text": "written"}]),
        ("toolu_2", "error", [{"text": "disk full"}]),
    ]


# --- request leniency -------------------------------------------------------------------------------


def test_system_prompt_string_or_blocks_reaches_kiro(proxy: Proxy) -> None:
    blocks = [
        {"type": "text", "text": "You are a pirate.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Say arr."},
    ]
    for system, expected in [("You are a pirate.", "You are a pirate."), (blocks, "You are a pirate.\n\nSay arr.")]:
        proxy.anthropic().messages.create(
            model=MODEL, max_tokens=64, system=system, messages=[{"role": "user", "content": "ahoy"}]
        )
        assert current(received(proxy))["content"] == f"{expected}\n\nahoy"


def test_lenient_request_is_accepted_and_normalised(proxy: Proxy, raw: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "service_tier": "auto",
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "messages": [
            {"role": "system", "content": "Answer in French."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Bonjour", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                    {"type": "search_result", "source": "kb", "title": "t", "content": []},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "A note."}},
                    {"type": "brand_new_block", "text": "kept text"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "redacted_thinking", "data": "c2VjcmV0"}, {"type": "text", "text": "Oui."}],
            },
            {"role": "user", "content": "Encore"},
        ],
    }
    response = raw.post("/v1/messages", json=body)

    assert response.status_code == 200, response.text
    sent = received(proxy)["conversationState"]
    first = sent["history"][0]["userInputMessage"]["content"]
    assert first.startswith("Answer in French.")
    assert "Bonjour" in first and "A note." in first and "kept text" in first
    assert sent["history"][1]["assistantResponseMessage"]["content"] == "Oui."


def test_thinking_block_in_history_goes_back_as_tags(proxy: Proxy) -> None:
    messages = [
        {"role": "user", "content": "2+2?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Simple sum.", "signature": "sig-from-earlier"},
                {"type": "text", "text": "4"},
            ],
        },
        {"role": "user", "content": "and 3+3?"},
    ]
    proxy.anthropic().messages.create(model=MODEL, max_tokens=64, messages=messages)
    assistant = received(proxy)["conversationState"]["history"][1]["assistantResponseMessage"]
    assert assistant["content"] == "<thinking>Simple sum.</thinking>\n\n4"


# --- stop reasons -------------------------------------------------------------------------------------


def test_stop_reason_max_tokens(proxy: Proxy, raw: httpx.Client) -> None:
    tails = {
        "content-length exception": scenarios.exception(scenarios.CONTENT_LENGTH_EXCEEDED),
        "metadata MAX_TOKENS": scenarios.token_usage(10, 20, stop_reason="MAX_TOKENS"),
    }
    request = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "go"}]}
    seen = {}
    for name, tail in tails.items():
        reply = StreamReply([*scenarios.text("A long ans", "wer that was cut"), *tail])
        proxy.kiro.fake.script(reply, reply)
        whole = proxy.anthropic().messages.create(**request)
        events = sse_events(raw.post("/v1/messages", json={**request, "stream": True}).text)
        seen[name] = (whole.stop_reason, whole.content[0].text, events[-2][1]["delta"]["stop_reason"], events[-1][0])
    expected = ("max_tokens", "A long answer that was cut", "max_tokens", "message_stop")
    assert seen == {name: expected for name in tails}


def test_stream_error_after_output_is_an_error_event(proxy: Proxy, raw: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hi [[fake:exception:ThrottlingException]]"}],
    }
    events = sse_events(raw.post("/v1/messages", json=body).text)
    name, data = events[-1]
    assert name == "error"
    assert data["type"] == "error" and data["error"]["type"] == "rate_limit_error"
    assert "message_stop" not in [n for n, _ in events]


# --- count_tokens, auth, errors ------------------------------------------------------------------------


def test_count_tokens_estimates_without_calling_kiro(proxy: Proxy) -> None:
    client = proxy.anthropic()
    messages = [{"role": "user", "content": "How many tokens is this sentence, roughly?"}]
    bare = client.messages.count_tokens(model=MODEL, messages=messages)
    with_tools = client.messages.count_tokens(model=MODEL, messages=messages, system="Be brief.", tools=[WRITE_TOOL])

    assert 5 < bare.input_tokens < 50
    assert with_tools.input_tokens > bare.input_tokens
    assert proxy.kiro.fake.chat_requests() == []


def test_auth_accepts_either_header(proxy: Proxy) -> None:
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({"x-api-key": DEFAULT_API_KEY}, {"authorization": f"Bearer {DEFAULT_API_KEY}"}):
        response = httpx.post(
            f"{proxy.url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01", **headers}
        )
        assert (response.status_code, response.json()["content"][0]["text"]) == (200, "Echo: hi"), headers


def test_auth_wrong_key_is_anthropic_401(proxy: Proxy) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key="wrong-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert "API key" in body["error"]["message"]
    assert proxy.kiro.fake.chat_requests() == []


def test_errors_use_anthropic_shape(no_retry_proxy: Proxy) -> None:
    cases = {
        "bad json": (b"{not json", 400, "invalid_request_error"),
        "no messages": (b'{"model": "claude-sonnet-4.5", "max_tokens": 5}', 400, "invalid_request_error"),
        "messages not a list": (b'{"model": "claude-sonnet-4.5", "messages": "hi"}', 400, "invalid_request_error"),
        "kiro 429": (KIRO_ERROR % b"429", 429, "rate_limit_error"),
        "kiro 402": (KIRO_ERROR % b"402", 402, "billing_error"),
    }
    seen = {}
    for name, (payload, _, _) in cases.items():
        response = httpx.post(
            f"{no_retry_proxy.url}/v1/messages",
            content=payload,
            headers={**HEADERS, "content-type": "application/json"},
        )
        body = response.json()
        seen[name] = (response.status_code, body["type"], body["error"]["type"], bool(body["error"]["message"]))
    assert seen == {name: (status, "error", kind, True) for name, (_, status, kind) in cases.items()}


def test_context_overflow_is_prompt_too_long(proxy: Proxy) -> None:
    proxy.kiro.fake.script(ErrorReply(400, TOO_LONG))
    with pytest.raises(anthropic.BadRequestError) as caught:
        proxy.anthropic().messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    # Claude Code compacts the conversation when it sees Anthropic's own wording for this error.
    assert error["message"].lower().startswith("prompt is too long")


# --- a Claude-Code-shaped request ------------------------------------------------------------------------


def test_claude_code_request_streams_without_4xx(proxy: Proxy, raw: httpx.Client) -> None:
    headers = {"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14", "x-app": "cli"}
    response = raw.post("/v1/messages", params={"beta": "true"}, json=claude_code_body(), headers=headers)

    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    assert [events[0][0], events[-1][0]] == ["message_start", "message_stop"]
    text = "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")
    assert text.startswith("Echo: ")
    assert current(received(proxy))["content"].endswith('Thanks! Now add a test for "+5" too.')


def test_claude_code_request_reaches_kiro_in_shape(proxy: Proxy) -> None:
    proxy.anthropic().messages.create(**sdk_arguments(claude_code_body()))

    sent = received(proxy)
    state = sent["conversationState"]
    tools = {t["toolSpecification"]["name"] for t in current(sent)["userInputMessageContext"]["tools"]}
    assert {"Bash", "Read", "Edit", "TodoWrite", "mcp__ide__getDiagnostics"} <= tools
    assert LONG_MCP not in tools and all(len(name) <= 64 for name in tools)
    assert "additionalProperties" not in json.dumps(sent)
    first = state["history"][0]["userInputMessage"]["content"]
    assert first.startswith("You are Claude Code, Anthropic's official CLI for Claude.")
    assert "Hook output: the pre-commit formatter rewrote 0 files." in first
    assert "<system-reminder>" in first and "Run tests with `pytest -q`." in first
    assert state["history"][1]["assistantResponseMessage"]["content"].startswith("<thinking>The user reports")
    assert "<system-reminder>" in current(sent)["content"]
    # Sonnet 4.6 takes native thinking (kiro-protocol.md §10.2), so no prompt tags are needed.
    assert sent["additionalModelRequestFields"]["thinking"]["type"] == "adaptive"
    assert "<thinking_mode>" not in current(sent)["content"]
    uses = [u for t in state["history"] for u in t.get("assistantResponseMessage", {}).get("toolUses", [])]
    assert len(uses) == 7
    statuses = [
        r["status"]
        for t in [*state["history"], {"userInputMessage": current(sent)}]
        for r in t.get("userInputMessage", {}).get("userInputMessageContext", {}).get("toolResults", [])
    ]
    assert sorted(statuses) == ["error"] + ["success"] * 6


def test_claude_code_long_tool_name_maps_back(proxy: Proxy) -> None:
    arguments = sdk_arguments(claude_code_body())
    client = proxy.anthropic()
    client.messages.create(**arguments)
    [short] = [
        u["name"]
        for t in received(proxy)["conversationState"]["history"]
        for u in t.get("assistantResponseMessage", {}).get("toolUses", [])
        if u["toolUseId"] == "toolu_01Mcp0000000000000000000"
    ]
    comment = '{"owner": "dev", "repo": "parser", "pull_number": 12, "path": "t.py", "line": 12, "body": "ok"}'
    proxy.kiro.fake.script(tool_reply(short, comment, "tooluse_mcp"))

    with client.messages.stream(**arguments) as stream:
        final = stream.get_final_message()
    tool_use = final.content[-1]
    assert (tool_use.type, tool_use.id, tool_use.name) == ("tool_use", "tooluse_mcp", LONG_MCP)
    assert tool_use.input == json.loads(comment)
    assert final.stop_reason == "tool_use"

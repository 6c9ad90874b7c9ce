"""Web search through Kiro's `/mcp` (kiro-protocol-2026.md §6), for Anthropic, Responses API and chat clients.

Claude Code's WebSearch side query (only the `web_search_20250305` server tool) is answered by the search
alone, with native `server_tool_use` / `web_search_tool_result` blocks; beside ordinary tools the model
may search mid-answer and go on. A login without web tools gets a clear error, never "0 results".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from tests.fake_kiro import StreamReply, scenarios, write_token_file
from tests.fake_kiro.web_search import results_for
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

MODEL = "claude-sonnet-4.5"
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CLAUDE_CODE_SEARCH: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 1024,
    "system": "You are an assistant for performing a web search tool use",
    "messages": [{"role": "user", "content": "Perform a web search for the query: python 3.14 release date"}],
    "tools": [SEARCH_TOOL],
    "tool_choice": {"type": "tool", "name": "web_search"},
}


def mcp_bodies(proxy: Proxy) -> list[dict[str, Any]]:
    return [r.json for r in proxy.kiro.fake.mcp_requests()]


def check_search_blocks(content: list[Any], query: str) -> None:
    use, result, text = content[0], content[1], content[2]
    assert use.type == "server_tool_use" and use.name == "web_search" and use.input == {"query": query}
    assert result.type == "web_search_tool_result" and result.tool_use_id == use.id
    expected = results_for(query)
    assert [(r.url, r.title) for r in result.content] == [(e["url"], e["title"]) for e in expected]
    assert result.content[0].page_age == "October 1, 2025" and result.content[1].page_age is None
    assert result.content[0].encrypted_content.startswith("Snippet 1 about")
    assert text.type == "text" and expected[0]["url"] in text.text and query in text.text


@pytest.mark.parametrize("stream", [False, True])
def test_claude_code_search_query_is_answered_by_kiro_search(proxy: Proxy, stream: bool) -> None:
    client = proxy.anthropic()
    if stream:
        with client.messages.stream(**CLAUDE_CODE_SEARCH) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**CLAUDE_CODE_SEARCH)

    check_search_blocks(message.content, "python 3.14 release date")
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1
    assert proxy.kiro.fake.chat_requests() == [], "a search-only request must not cost a model call"
    [call] = mcp_bodies(proxy)
    assert call["method"] == "tools/call" and call["params"]["arguments"]["query"] == "python 3.14 release date"
    assert call["profileArn"] == proxy.kiro.account.profile_arn
    assert proxy.kiro.fake.rejections == []


def test_a_search_without_hits_is_an_empty_result_not_an_error(proxy: Proxy) -> None:
    body = {
        **CLAUDE_CODE_SEARCH,
        "messages": [{"role": "user", "content": "Perform a web search for the query: nothing"}],
    }
    message = proxy.anthropic().messages.create(**body)

    use, result, text = message.content
    assert result.tool_use_id == use.id and result.content == []
    assert "found no results" in text.text


@pytest.fixture
def frankfurt(fake_kiro: Any, isolated_home: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """A login in eu-central-1, a region reported without web tools (§6.2)."""
    account = fake_kiro.accounts.add_social(region="eu-central-1")
    for variable in KIRO_URL_VARIABLES:
        monkeypatch.setenv(variable, fake_kiro.base_url)
    monkeypatch.setenv("KIRO_Q_URL", fake_kiro.q_url)
    env = KiroEnv(fake_kiro, account, isolated_home, write_token_file(isolated_home, account))
    runtime = start_proxy(env)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", env)
    finally:
        runtime.service.close()


def test_a_login_without_web_tools_gets_a_clear_error(frankfurt: Proxy) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        frankfurt.anthropic().messages.create(**CLAUDE_CODE_SEARCH)
    assert "web search is not available" in caught.value.message
    assert "Web tools are not available for this account or region" in caught.value.message


def scripted_search_then_answer(query: str, answer: str) -> list[StreamReply]:
    first = StreamReply(
        [
            *scenarios.text("Let me look."),
            *scenarios.tool_call("kiro_web_search", json.dumps({"query": query})),
            *scenarios.usage(),
        ]
    )
    second = StreamReply([*scenarios.text(*scenarios.pieces(answer)), *scenarios.usage()])
    return [first, second]


@pytest.mark.parametrize("stream", [False, True])
def test_model_searches_mid_answer_beside_ordinary_tools(proxy: Proxy, stream: bool) -> None:
    fake = proxy.kiro.fake
    fake.script(*scripted_search_then_answer("python 3.14", "It came out in October 2025."))
    body = {
        "model": MODEL,
        "max_tokens": 512,
        "tools": [SEARCH_TOOL, WEATHER],
        "messages": [{"role": "user", "content": "When did Python 3.14 come out?"}],
    }
    client = proxy.anthropic()
    if stream:
        with client.messages.stream(**body) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**body)

    kinds = [block.type for block in message.content]
    assert kinds == ["text", "server_tool_use", "web_search_tool_result", "text"]
    assert message.content[3].text == "It came out in October 2025."
    assert message.content[2].tool_use_id == message.content[1].id
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1

    first, second = [r.json for r in fake.chat_requests()]
    tools = [
        t["toolSpecification"]["name"] for t in scenarios.current_message(first)["userInputMessageContext"]["tools"]
    ]
    assert tools == ["get_weather", "kiro_web_search"]
    [use] = second["conversationState"]["history"][-1]["assistantResponseMessage"]["toolUses"]
    assert use["name"] == "kiro_web_search" and use["input"] == {"query": "python 3.14"}
    [result] = scenarios.current_message(second)["userInputMessageContext"]["toolResults"]
    assert (
        result["toolUseId"] == use["toolUseId"] and "https://example.org/python-3-14/1" in result["content"][0]["text"]
    )
    assert fake.rejections == []


def test_searches_stop_after_a_bounded_number_of_rounds(proxy: Proxy) -> None:
    fake = proxy.kiro.fake
    again = StreamReply([*scenarios.tool_call("kiro_web_search", '{"query": "again"}'), *scenarios.usage()])
    fake.script(*[again] * 6)
    body = {
        "model": MODEL,
        "max_tokens": 512,
        "tools": [SEARCH_TOOL, WEATHER],
        "messages": [{"role": "user", "content": "Search forever"}],
    }
    message = proxy.anthropic().messages.create(**body)

    assert len(fake.chat_requests()) == 5
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 5
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True])
def test_responses_api_web_search_tool(proxy: Proxy, stream: bool) -> None:
    proxy.kiro.fake.script(*scripted_search_then_answer("kiro news", "Kiro shipped 1.0."))
    client = proxy.openai()
    request: dict[str, Any] = {"model": MODEL, "input": "Any Kiro news?", "tools": [{"type": "web_search"}]}
    if stream:
        with client.responses.stream(**request) as events:
            kinds = [event.type for event in events]
            response = events.get_final_response()
        assert "response.web_search_call.completed" in kinds
    else:
        response = client.responses.create(**request)

    [search] = [item for item in response.output if item.type == "web_search_call"]
    assert search.status == "completed" and search.action.query == "kiro news"
    assert [s.url for s in search.action.sources or []] == [r["url"] for r in results_for("kiro news")]
    assert response.output_text.endswith("Kiro shipped 1.0.")


def test_openai_chat_client_asking_for_web_search(proxy: Proxy) -> None:
    proxy.kiro.fake.script(*scripted_search_then_answer("weather tomorrow", "Sunny."))
    completion = proxy.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather tomorrow?"}], web_search_options={}
    )
    assert completion.choices[0].message.content == "Let me look.Sunny."
    assert completion.choices[0].finish_reason == "stop"
    [call] = mcp_bodies(proxy)
    assert call["params"]["arguments"] == {"query": "weather tomorrow"}


def test_mcp_call_carries_kiro_identity(proxy: Proxy) -> None:
    proxy.anthropic().messages.create(**CLAUDE_CODE_SEARCH)
    [request] = proxy.kiro.fake.mcp_requests()
    assert "KiroIDE" in request.headers["user-agent"]
    assert request.headers["x-amzn-kiro-profile-arn"] == proxy.kiro.account.profile_arn
    assert request.json["id"].startswith("web_search_tooluse_")
    reply = httpx.post(
        f"{proxy.url}/v1/messages",
        json={**CLAUDE_CODE_SEARCH, "messages": [{"role": "user", "content": "   "}]},
        headers={"x-api-key": DEFAULT_API_KEY},
    )
    assert reply.status_code == 400 and reply.json()["type"] == "error"

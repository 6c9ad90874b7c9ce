"""Web search through Kiro's MCP `web_search` tool (kiro-protocol-2026.md §6): the call, the answer, the words.

Pure: builds the JSON-RPC body, reads the doubly encoded answer, picks the query out of what a client
sent, and writes the short summaries the client and the model see. The HTTP call is `kiro/web_search.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .errors import UpstreamError
from .model import ChatRequest, SearchResult, TextPart, ToolSpec

# Claude Code's WebSearch side query says exactly this before the query (§6.3).
CLAUDE_CODE_PREFIX = "Perform a web search for the query: "
SNIPPET_CHARS = 200
MAX_QUERY_CHARS = 500

SEARCH_TOOL_DESCRIPTION = (
    "Search the web for current information. Returns titles, URLs, dates and snippets of matching pages. "
    "Use it when the answer depends on recent events or facts you are not sure of."
)


def search_tool(name: str) -> ToolSpec:
    """The function Kiro's model is offered when the client asked for a server-side web search."""
    schema = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to search the web for."}},
        "required": ["query"],
    }
    return ToolSpec(name=name, description=SEARCH_TOOL_DESCRIPTION, parameters=schema)


class WebSearchUnavailable(UpstreamError):
    """Kiro refused the search: the login, its plan or its region has no web tools, or the call was refused."""

    status = 400
    kind = "invalid_request_error"
    code = "web_search_unavailable"


def mcp_body(query: str, *, request_id: str, profile_arn: str) -> dict[str, Any]:
    """§6.1: JSON-RPC 2.0 `tools/call`; the profile ARN at the root (Kiro ignores it as a query parameter)."""
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "web_search", "arguments": {"query": query}},
    }
    if profile_arn:
        body["profileArn"] = profile_arn
    return body


def parse_mcp_answer(body: object) -> tuple[SearchResult, ...]:
    """§6.2: `result.content[0].text` is a JSON string holding `results[]`; "no results" is an empty list."""
    if not isinstance(body, dict):
        raise WebSearchUnavailable("Kiro's web search answered something that is not JSON-RPC.")
    error = body.get("error")
    if isinstance(error, dict):
        message = str(error.get("message") or "no details")
        if "no results" in message.lower():
            return ()  # -32602 "Tool returned no results" means an empty result, not a failure (KRS-Z PR #57)
        raise WebSearchUnavailable(f"Kiro's web search refused the query. Kiro said: {message[:300]}")
    result = body.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    first = content[0] if isinstance(content, list) and content else None
    text = first.get("text") if isinstance(first, dict) else None
    if not isinstance(text, str):
        raise WebSearchUnavailable("Kiro's web search answered without results.")
    try:
        inner = json.loads(text)
    except ValueError:
        inner = None
    if not isinstance(inner, dict):
        if isinstance(result, dict) and result.get("isError") is True:
            raise WebSearchUnavailable(f"Kiro's web search failed. Kiro said: {text[:300]}")
        raise WebSearchUnavailable("Kiro's web search answered in a form ki2api does not understand.")
    if inner.get("error"):
        raise WebSearchUnavailable(f"Kiro's web search failed. Kiro said: {str(inner['error'])[:300]}")
    return tuple(r for r in (_result(entry) for entry in inner.get("results") or []) if r is not None)


def _result(entry: object) -> SearchResult | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not entry["url"]:
        return None
    published = entry.get("publishedDate")
    if not isinstance(published, int | float) or isinstance(published, bool) or published <= 0:
        published = None
    title = entry.get("title")
    snippet = entry.get("snippet")
    return SearchResult(
        title=title if isinstance(title, str) and title else entry["url"],
        url=entry["url"],
        snippet=snippet if isinstance(snippet, str) else "",
        published_ms=int(published) if published is not None else None,
    )


def page_age(published_ms: int | None) -> str | None:
    """Anthropic's `page_age` in words ("October 1, 2025"), or None when Kiro gave no date."""
    if published_ms is None:
        return None
    try:
        day = datetime.fromtimestamp(published_ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return f"{day:%B} {day.day}, {day.year}"


def query_from_request(chat: ChatRequest) -> str:
    """The query of a search-only request: the last user text, without Claude Code's fixed lead-in."""
    for message in reversed(chat.messages):
        if message.role != "user":
            continue
        text = " ".join(p.text for p in message.parts if isinstance(p, TextPart)).strip()
        if text:
            if CLAUDE_CODE_PREFIX.lower() in text.lower():
                start = text.lower().rindex(CLAUDE_CODE_PREFIX.lower()) + len(CLAUDE_CODE_PREFIX)
                text = text[start:].strip()
            return text[:MAX_QUERY_CHARS]
    return ""


def query_from_arguments(arguments: str) -> str:
    """The query in the model's call, under whichever name it used (`query`, `search_query`, `q`, `queries`)."""
    try:
        value = json.loads(arguments) if arguments else {}
    except (ValueError, RecursionError):
        return ""
    if not isinstance(value, dict):
        return ""
    for key in ("query", "search_query", "q"):
        if isinstance(value.get(key), str) and value[key].strip():
            return str(value[key]).strip()[:MAX_QUERY_CHARS]
    queries = value.get("queries")
    if isinstance(queries, list):
        return " ".join(q for q in queries if isinstance(q, str)).strip()[:MAX_QUERY_CHARS]
    return ""


def summary_text(query: str, results: Sequence[SearchResult], error: str = "") -> str:
    """What a person (or the model, as the tool's result) reads: one line per hit, snippets cut short."""
    if error:
        return f'The web search for "{query}" could not be run: {error}'
    if not results:
        return f'The web search for "{query}" found no results.'
    lines = [f'Web search results for "{query}":', ""]
    for number, result in enumerate(results, 1):
        age = page_age(result.published_ms)
        lines.append(f"{number}. {result.title}" + (f" ({age})" if age else ""))
        lines.append(f"   {result.url}")
        snippet = " ".join(result.snippet.split())
        if snippet:
            lines.append(f"   {snippet[:SNIPPET_CHARS]}{'…' if len(snippet) > SNIPPET_CHARS else ''}")
    return "\n".join(lines)


def anthropic_search_tool(body: object) -> dict[str, Any] | None:
    """The Anthropic server tool `web_search_*` (e.g. `web_search_20250305`) in a Messages request, if any."""
    tools = body.get("tools") if isinstance(body, dict) else None
    if not isinstance(tools, list):
        return None
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("type"), str) and tool["type"].startswith("web_search_"):
            return tool
    return None


def search_function_name(chat: ChatRequest) -> str:
    """The name the search function gets (OKA's): not `web_search`, which the Kiro request builder leaves out
    as a server tool (tool_specs.SERVER_TOOL_NAMES); with a suffix if the client has a function of that name."""
    taken = {tool.name for tool in chat.tools}
    name, number = "kiro_web_search", 1
    while name in taken:
        number += 1
        name = f"kiro_web_search_{number}"
    return name

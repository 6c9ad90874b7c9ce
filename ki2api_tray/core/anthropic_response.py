"""Neutral stream events -> Anthropic Messages responses: SSE events, one whole message, error bodies.

The event order is the one the official SDKs' accumulators and Claude Code rely on; see
`AnthropicStreamEncoder` for the invariants.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import groupby
from typing import Any, Literal

from .errors import ContextLengthExceeded, Ki2apiError
from .model import Finish, StopReason, StreamEvent, TextDelta, ThinkingDelta, ToolCall, Usage, WebSearch
from .web_search import page_age

SseEvent = tuple[str, dict[str, Any]]
"""An SSE event name and its JSON data; the data repeats the name in `type`, as Anthropic's does."""

# Kiro returns reasoning without Anthropic's signature. Claude Code silently drops a thinking block that
# never got a non-empty signature (reported for several Anthropic-compatible proxies), so a fixed
# placeholder is sent; when Claude Code replays it in history, ki2api accepts any signature.
THINKING_SIGNATURE = "ki2api-kiro-thinking-unsigned"

# The start of Anthropic's own message for a context overflow (the HTTP status alone is a plain 400).
PROMPT_TOO_LONG = "prompt is too long"

_STOP_REASONS: dict[StopReason, str] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "content_filter": "refusal",
    "stop_sequence": "stop_sequence",
}

# Anthropic's documented HTTP status -> error type table.
_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicStreamEncoder:
    """Turns one response's neutral events into Anthropic SSE events.

    Invariants: `message_start` comes first and `message_stop` last; at most one content block is open;
    block indexes count from 0 without gaps; a thinking block gets a `signature_delta` right before its
    `content_block_stop`; a tool call is a whole block (start, one `input_json_delta`, stop); nothing is
    emitted after `Finish`. One instance per response: it is not shared between streams.
    """

    def __init__(self, *, model: str, message_id: str, input_tokens: int) -> None:
        self._model = model
        self._message_id = message_id
        self._input_tokens = input_tokens
        self._started = False
        self._finished = False
        self._open_block: Literal["text", "thinking"] | None = None
        self._next_index = 0
        self._saw_tool_call = False
        self._searches = 0
        self._usage: Usage | None = None

    @property
    def finished(self) -> bool:
        """True once `message_stop` has been produced; a server can then tell a clean end from a cut-off."""
        return self._finished

    def start(self) -> list[SseEvent]:
        """`message_start` and a first `ping`; empty if already started (`encode` starts on demand)."""
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage_body(self._input_tokens, 0),
        }
        return [("message_start", {"type": "message_start", "message": message}), self.ping()]

    @staticmethod
    def ping() -> SseEvent:
        """A keep-alive the server may send while Kiro is silent; clients ignore it."""
        return ("ping", {"type": "ping"})

    def encode(self, event: StreamEvent) -> list[SseEvent]:
        if self._finished:
            return []
        out = self.start()
        if isinstance(event, TextDelta):
            if event.text:
                out += self._delta("text", {"type": "text_delta", "text": event.text})
        elif isinstance(event, ThinkingDelta):
            if event.text:
                out += self._delta("thinking", {"type": "thinking_delta", "thinking": event.text})
        elif isinstance(event, ToolCall):
            out += self._tool_call(event)
        elif isinstance(event, WebSearch):
            out += self._web_search(event)
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, Finish):
            out += self._finish(event)
        return out

    def _delta(self, kind: Literal["text", "thinking"], delta: dict[str, Any]) -> list[SseEvent]:
        out: list[SseEvent] = []
        if self._open_block != kind:
            out += self._close_block()
            block = {"type": "text", "text": ""} if kind == "text" else _empty_thinking_block()
            out.append(self._block_start(block))
            self._open_block = kind
        out.append(("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}))
        return out

    def _tool_call(self, call: ToolCall) -> list[SseEvent]:
        out = self._close_block()
        self._saw_tool_call = True
        out.append(self._block_start({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}))
        if call.arguments:
            delta = {"type": "input_json_delta", "partial_json": call.arguments}
            out.append(("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}))
        out.append(self._block_stop())
        return out

    def _web_search(self, search: WebSearch) -> list[SseEvent]:
        """A search ki2api ran: its `server_tool_use` block (input streamed as Anthropic does), then the result."""
        out = self._close_block()
        self._searches += 1
        use, result = web_search_blocks(search)
        out.append(self._block_start({**use, "input": {}}))
        delta = {"type": "input_json_delta", "partial_json": json.dumps(use["input"], ensure_ascii=False)}
        out.append(("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}))
        out.append(self._block_stop())
        out.append(self._block_start(result))
        out.append(self._block_stop())
        return out

    def _finish(self, finish: Finish) -> list[SseEvent]:
        out = self._close_block()
        self._finished = True
        usage = self._usage
        delta = {"stop_reason": _stop_reason(finish.reason, self._saw_tool_call), "stop_sequence": _matched(finish)}
        message_usage: dict[str, Any] = {
            "input_tokens": usage.input_tokens if usage else self._input_tokens,
            "output_tokens": usage.output_tokens if usage else 0,
        }
        if self._searches:
            message_usage["server_tool_use"] = _server_tool_use(self._searches)
        out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": message_usage}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out

    @property
    def _index(self) -> int:
        """Index of the block opened last."""
        return self._next_index - 1

    def _block_start(self, block: dict[str, Any]) -> SseEvent:
        self._next_index += 1
        return ("content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block})

    def _block_stop(self) -> SseEvent:
        return ("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _close_block(self) -> list[SseEvent]:
        if self._open_block is None:
            return []
        out: list[SseEvent] = []
        if self._open_block == "thinking":
            delta = {"type": "signature_delta", "signature": THINKING_SIGNATURE}
            out.append(("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}))
        out.append(self._block_stop())
        self._open_block = None
        return out


def anthropic_message(
    events: Iterable[StreamEvent], *, model: str, message_id: str, input_tokens: int
) -> dict[str, Any]:
    """A whole non-streaming Messages response; consecutive deltas of one kind become one block."""
    content: list[dict[str, Any]] = []
    usage: Usage | None = None
    finish = Finish("end_turn")
    saw_tool_call = False
    searches = 0
    for kind, group in groupby(events, key=type):
        if kind is TextDelta:
            text = "".join(e.text for e in group if isinstance(e, TextDelta))
            if text:
                content.append({"type": "text", "text": text})
            continue
        if kind is ThinkingDelta:
            thinking = "".join(e.text for e in group if isinstance(e, ThinkingDelta))
            if thinking:
                content.append({"type": "thinking", "thinking": thinking, "signature": THINKING_SIGNATURE})
            continue
        for event in group:
            if isinstance(event, ToolCall):
                saw_tool_call = True
                content.append({"type": "tool_use", "id": event.id, "name": event.name, "input": _input(event)})
            elif isinstance(event, WebSearch):
                searches += 1
                content.extend(web_search_blocks(event))
            elif isinstance(event, Usage):
                usage = event
            elif isinstance(event, Finish):
                finish = event
    body_usage: dict[str, Any] = _usage_body(
        usage.input_tokens if usage else input_tokens, usage.output_tokens if usage else 0
    )
    if searches:
        body_usage["server_tool_use"] = _server_tool_use(searches)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(finish.reason, saw_tool_call),
        "stop_sequence": _matched(finish),
        "usage": body_usage,
    }


def web_search_blocks(search: WebSearch) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `server_tool_use` and `web_search_tool_result` blocks of one search (kiro-protocol-2026.md §6.3).

    `encrypted_content` is opaque in Anthropic's API; Kiro has no such thing, so it carries the snippet,
    as every peer does. A failed search is Anthropic's error object, so the client does not read "0 results".
    """
    use = {"type": "server_tool_use", "id": search.id, "name": "web_search", "input": {"query": search.query}}
    content: Any
    if search.error:
        content = {"type": "web_search_tool_result_error", "error_code": "unavailable"}
    else:
        content = [
            {
                "type": "web_search_result",
                "title": result.title,
                "url": result.url,
                "encrypted_content": result.snippet,
                "page_age": page_age(result.published_ms),
            }
            for result in search.results
        ]
    return use, {"type": "web_search_tool_result", "tool_use_id": search.id, "content": content}


def _server_tool_use(searches: int) -> dict[str, int]:
    return {"web_search_requests": searches, "web_fetch_requests": 0}


def anthropic_error_body(error: Ki2apiError) -> dict[str, Any]:
    """`{"type": "error", "error": {"type", "message"}}`, the type chosen from the error's HTTP status."""
    message = error.message
    if isinstance(error, ContextLengthExceeded) and not message.lower().startswith(PROMPT_TOO_LONG):
        # Anthropic words a context overflow "prompt is too long: ..."; Claude Code keys its reactive
        # compaction on that phrase, and without it retries the same oversized request forever.
        message = f"{PROMPT_TOO_LONG}: {message}"
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(error.status, "api_error"), "message": message}}


def _stop_reason(reason: StopReason, saw_tool_call: bool) -> str:
    # Clients run tools when stop_reason is tool_use; Kiro's end-of-stream does not always say so
    # after a tool call (kiro-protocol.md §6.1), so a tool call upgrades a plain end_turn.
    if saw_tool_call and reason == "end_turn":
        return "tool_use"
    return _STOP_REASONS[reason]


def _matched(finish: Finish) -> str | None:
    """Anthropic's `stop_sequence`: the string that ended the answer, null for any other stop."""
    return finish.stop_sequence if finish.reason == "stop_sequence" else None


def _usage_body(input_tokens: int, output_tokens: int) -> dict[str, int]:
    # Kiro has no prompt cache, so the cache counters are always 0 (Claude Code reads them).
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _empty_thinking_block() -> dict[str, Any]:
    # The placeholder already in the start block: Claude Code has been seen to reject a thinking block
    # whose start carries no signature; the signature_delta before the stop repeats it for the SDKs.
    return {"type": "thinking", "thinking": "", "signature": THINKING_SIGNATURE}


def _input(call: ToolCall) -> dict[str, Any]:
    # ToolCall.arguments is promised to be a JSON object; anything else would break every client's parser.
    try:
        value = json.loads(call.arguments, parse_constant=_null_for_constant) if call.arguments else {}
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _null_for_constant(name: str) -> None:
    # A model's raw tool input may say NaN or Infinity; Python's parser takes them, JSON (and clients) do not.
    return None

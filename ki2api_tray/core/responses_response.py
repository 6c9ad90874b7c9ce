"""Neutral stream events -> OpenAI Responses API objects and streamed events (with `sequence_number`s).

The event order is the one the official `openai` SDK's `responses.stream()` accumulator and Codex read:
`response.created`, `response.in_progress`, then per output item `output_item.added`, its deltas and
`output_item.done`, and last `response.completed` (or `response.incomplete` / `response.failed`). The
same encoder builds the non-streamed Response object, so both paths agree item for item.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .errors import Ki2apiError
from .model import (
    Finish,
    Message,
    Part,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCall,
    ToolCallPart,
    Usage,
    WebSearch,
)
from .responses_tools import CUSTOM_INPUT, ToolOrigin

SseEvent = tuple[str, dict[str, Any]]
"""An SSE event name and its JSON data; the data repeats the name in `type`."""

_INCOMPLETE = {"max_tokens": "max_output_tokens", "content_filter": "content_filter"}


class ResponsesEncoder:
    """Turns one response's neutral events into Responses API stream events and the final Response object.

    At most one message or reasoning item is open at a time; tool calls are whole items. Nothing is
    emitted after the terminal event. `envelope` carries the fields every Response snapshot repeats
    (model, tools, tool_choice, ...); `origins` maps Kiro's flat tool names back to the client's tools.
    """

    def __init__(
        self, *, response_id: str, created_at: int, envelope: Mapping[str, Any], origins: Mapping[str, ToolOrigin]
    ) -> None:
        self._id = response_id
        self._created_at = created_at
        self._envelope = dict(envelope)
        self._origins = origins
        self._sequence = 0
        self._items: list[dict[str, Any]] = []
        self._open: Literal["message", "reasoning"] | None = None
        self._text: list[str] = []
        self._usage: Usage | None = None
        self._parts: list[Part] = []  # what the assistant said, for a stored conversation
        self.finished = False

    # --- public -----------------------------------------------------------------------------------

    def start(self) -> list[SseEvent]:
        snapshot = self.response("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def encode(self, event: StreamEvent) -> list[SseEvent]:
        if self.finished:
            return []
        if isinstance(event, TextDelta):
            return self._delta("message", event.text) if event.text else []
        if isinstance(event, ThinkingDelta):
            return self._delta("reasoning", event.text) if event.text else []
        if isinstance(event, ToolCall):
            return self._close() + self._tool_call(event)
        if isinstance(event, WebSearch):
            return self._close() + self._web_search(event)
        if isinstance(event, Usage):
            self._usage = event
            return []
        return self._finish(event)

    def fail(self, error: Ki2apiError) -> list[SseEvent]:
        """`response.failed` carrying the reason, for an error after the stream began."""
        if self.finished:
            return []
        out = self._close()
        self.finished = True
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        snapshot = self.response("failed", error={"code": code, "message": error.message})
        return [*out, self._event("response.failed", response=snapshot)]

    def response(self, status: str, **extra: Any) -> dict[str, Any]:
        """The Response object as it stands (a copy: later events do not change what was sent)."""
        body: dict[str, Any] = {
            "id": self._id,
            "object": "response",
            "created_at": self._created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "metadata": {},
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": None,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "truncation": "disabled",
            **self._envelope,
            "output": json.loads(json.dumps(self._items)),
            "usage": self._usage_body() if status != "in_progress" else None,
            **extra,
        }
        return body

    def assistant_message(self) -> Message:
        """What the assistant produced, as a neutral message a later turn can carry in its history."""
        return Message("assistant", tuple(self._parts))

    # --- items ------------------------------------------------------------------------------------

    def _delta(self, kind: Literal["message", "reasoning"], text: str) -> list[SseEvent]:
        out: list[SseEvent] = []
        if self._open != kind:
            out += self._close()
            out += self._open_item(kind)
        self._text.append(text)
        index = len(self._items) - 1
        item_id = self._items[index]["id"]
        if kind == "message":
            out.append(
                self._event(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            )
        else:
            out.append(
                self._event(
                    "response.reasoning_summary_text.delta",
                    item_id=item_id,
                    output_index=index,
                    summary_index=0,
                    delta=text,
                )
            )
        return out

    def _open_item(self, kind: Literal["message", "reasoning"]) -> list[SseEvent]:
        index = len(self._items)
        self._open = kind
        self._text = []
        if kind == "message":
            item: dict[str, Any] = {
                "id": self._item_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            self._items.append(item)
            part = {"type": "output_text", "text": "", "annotations": []}
            return [
                self._event("response.output_item.added", output_index=index, item=_copy(item)),
                self._event(
                    "response.content_part.added", item_id=item["id"], output_index=index, content_index=0, part=part
                ),
            ]
        item = {"id": self._item_id("rs"), "type": "reasoning", "summary": []}
        self._items.append(item)
        part = {"type": "summary_text", "text": ""}
        return [
            self._event("response.output_item.added", output_index=index, item=_copy(item)),
            self._event(
                "response.reasoning_summary_part.added",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part=part,
            ),
        ]

    def _close(self) -> list[SseEvent]:
        if self._open is None:
            return []
        index = len(self._items) - 1
        item = self._items[index]
        text = "".join(self._text)
        out: list[SseEvent] = []
        if self._open == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            item["content"] = [part]
            item["status"] = "completed"
            out.append(
                self._event(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                )
            )
            out.append(
                self._event(
                    "response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=part
                )
            )
            self._parts.append(TextPart(text))
        else:
            part = {"type": "summary_text", "text": text}
            item["summary"] = [part]
            out.append(
                self._event(
                    "response.reasoning_summary_text.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    text=text,
                )
            )
            out.append(
                self._event(
                    "response.reasoning_summary_part.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part=part,
                )
            )
            self._parts.append(ThinkingPart(text))
        out.append(self._event("response.output_item.done", output_index=index, item=_copy(item)))
        self._open = None
        self._text = []
        return out

    def _tool_call(self, call: ToolCall) -> list[SseEvent]:
        index = len(self._items)
        origin = self._origins.get(call.name, ToolOrigin(call.name))
        self._parts.append(ToolCallPart(call.id, call.name, call.arguments))
        namespace = {"namespace": origin.namespace} if origin.namespace else {}
        if origin.kind == "custom":
            text = _custom_input(call.arguments)
            item: dict[str, Any] = {
                "id": self._item_id("ctc"),
                "type": "custom_tool_call",
                "call_id": call.id,
                "name": origin.name,
                "input": "",
                "status": "in_progress",
                **namespace,
            }
            done_name, delta_name, whole = (
                "response.custom_tool_call_input.done",
                "response.custom_tool_call_input.delta",
                {"input": text},
            )
        else:
            text = call.arguments
            item = {
                "id": self._item_id("fc"),
                "type": "function_call",
                "call_id": call.id,
                "name": origin.name,
                "arguments": "",
                "status": "in_progress",
                **namespace,
            }
            done_name, delta_name = "response.function_call_arguments.done", "response.function_call_arguments.delta"
            whole = {"arguments": text, "name": origin.name}
        out = [self._event("response.output_item.added", output_index=index, item=_copy(item))]
        if text:
            out.append(self._event(delta_name, item_id=item["id"], output_index=index, delta=text))
        out.append(self._event(done_name, item_id=item["id"], output_index=index, **whole))
        item.update({"input": text} if origin.kind == "custom" else {"arguments": text})
        item["status"] = "completed"
        self._items.append(item)
        out.append(self._event("response.output_item.done", output_index=index, item=_copy(item)))
        return out

    def _web_search(self, search: WebSearch) -> list[SseEvent]:
        """A search ki2api ran for the model, as the `web_search_call` item OpenAI's hosted tool produces."""
        index = len(self._items)
        item: dict[str, Any] = {
            "id": self._item_id("ws"),
            "type": "web_search_call",
            "status": "in_progress",
            "action": {"type": "search", "query": search.query},
        }
        out = [self._event("response.output_item.added", output_index=index, item=_copy(item))]
        for stage in ("in_progress", "searching") if not search.error else ("in_progress",):
            out.append(self._event(f"response.web_search_call.{stage}", item_id=item["id"], output_index=index))
        if search.error:
            item["status"] = "failed"
        else:
            item["status"] = "completed"
            item["action"]["sources"] = [{"type": "url", "url": result.url} for result in search.results]
            out.append(self._event("response.web_search_call.completed", item_id=item["id"], output_index=index))
        self._items.append(item)
        out.append(self._event("response.output_item.done", output_index=index, item=_copy(item)))
        return out

    def _finish(self, finish: Finish) -> list[SseEvent]:
        out = self._close()
        self.finished = True
        reason = _INCOMPLETE.get(finish.reason)
        if reason is None:
            return [*out, self._event("response.completed", response=self.response("completed"))]
        snapshot = self.response("incomplete", incomplete_details={"reason": reason})
        return [*out, self._event("response.incomplete", response=snapshot)]

    # --- plumbing ---------------------------------------------------------------------------------

    def _usage_body(self) -> dict[str, Any]:
        usage = self._usage
        prompt = usage.input_tokens if usage else 0
        completion = usage.output_tokens if usage else 0
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }

    def _item_id(self, prefix: str) -> str:
        # Unique within the response and tied to it, so ids from two responses never collide.
        return f"{prefix}_{self._id.removeprefix('resp_')}{len(self._items):03d}"

    def _event(self, event_type: str, /, **fields: Any) -> SseEvent:
        data = {"type": event_type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event_type, data


def responses_object(encoder: ResponsesEncoder, events: Iterable[StreamEvent]) -> dict[str, Any]:
    """The whole Response for `stream: false`: the final snapshot the stream would have ended with."""
    last: dict[str, Any] | None = None
    for event in events:
        for _, data in encoder.encode(event):
            if data["type"] in ("response.completed", "response.incomplete"):
                last = data["response"]
    if last is None:  # a stream without Finish: report what arrived as complete
        last = encoder.encode(Finish("end_turn"))[-1][1]["response"]
    return last


def _custom_input(arguments: str) -> str:
    """A custom tool's free-text input back out of the one-string function Kiro called."""
    try:
        value = json.loads(arguments) if arguments else {}
    except (ValueError, RecursionError):
        return arguments
    if isinstance(value, dict) and isinstance(value.get(CUSTOM_INPUT), str):
        return str(value[CUSTOM_INPUT])
    return arguments


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(item))  # type: ignore[no-any-return]

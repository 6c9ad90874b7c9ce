"""Neutral stream events -> OpenAI `chat.completion.chunk`s, one `chat.completion`, error and model-list bodies.

Shapes follow the official `openai` SDK's types, which the tests parse every emitted dict with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import Ki2apiError
from .model import Finish, ModelInfo, StopReason, StreamEvent, TextDelta, ThinkingDelta, ToolCall, Usage, WebSearch

_FINISH_REASONS: dict[StopReason, str] = {
    "end_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "content_filter": "content_filter",
    "stop_sequence": "stop",
}


def _finish_reason(reason: StopReason, *, has_tool_calls: bool) -> str:
    """OpenAI's `finish_reason` for a neutral stop reason.

    Agents (Cline, Continue, LangChain) only run tools when the reason is `tool_calls`, so a turn that
    produced tool calls but ended "normally" is reported as `tool_calls`; a cut-off turn stays `length`.
    """
    if reason == "end_turn" and has_tool_calls:
        return "tool_calls"
    return _FINISH_REASONS[reason]


def _usage_body(usage: Usage | None) -> dict[str, int]:
    """OpenAI `usage`; zeros when the stream ended without a `Usage` event."""
    prompt = usage.input_tokens if usage else 0
    completion = usage.output_tokens if usage else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class OpenAIStreamEncoder:
    """Turns one response's neutral events into `chat.completion.chunk` dicts, in order.

    One instance per response: it numbers tool calls and remembers usage until the finish chunk.
    Events after `Finish` are ignored, so a stray trailing event cannot follow `[DONE]`'s last chunk.
    """

    def __init__(self, *, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        self._model = model
        self._completion_id = completion_id
        self._created = created
        self._include_usage = include_usage
        self._tool_calls = 0
        self._usage: Usage | None = None
        self._finished = False

    def start(self) -> list[dict[str, Any]]:
        """The opening chunk: clients such as Chatbox take the role from it."""
        return [self._chunk({"role": "assistant", "content": ""})]

    def encode(self, event: StreamEvent) -> list[dict[str, Any]]:
        if self._finished:
            return []
        if isinstance(event, TextDelta):
            return [self._chunk({"content": event.text})] if event.text else []
        if isinstance(event, ThinkingDelta):
            return [self._chunk({"reasoning_content": event.text})] if event.text else []
        if isinstance(event, ToolCall):
            return self._tool_call(event)
        if isinstance(event, Usage):
            self._usage = event
            return []
        if isinstance(event, WebSearch):
            return []  # run for the model, which answers with what it found; chat completions has no block for it
        return self._finish(event)

    def _tool_call(self, call: ToolCall) -> list[dict[str, Any]]:
        # The SDKs key accumulation on `index` and concatenate `arguments`: announce the call with
        # empty arguments first, as OpenAI does, then send them whole.
        index = self._tool_calls
        self._tool_calls += 1
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        body = {"index": index, "function": {"arguments": call.arguments}}
        return [self._chunk({"tool_calls": [head]}), self._chunk({"tool_calls": [body]})]

    def _finish(self, event: Finish) -> list[dict[str, Any]]:
        self._finished = True
        reason = _finish_reason(event.reason, has_tool_calls=self._tool_calls > 0)
        chunks = [self._chunk({}, finish_reason=reason)]
        if self._include_usage:
            final = self._envelope()
            final["choices"] = []
            final["usage"] = _usage_body(self._usage)
            chunks.append(final)
        return chunks

    def _chunk(self, delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
        chunk = self._envelope()
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
        if self._include_usage:
            # OpenAI sends `usage: null` on every chunk but the last when usage was asked for.
            chunk["usage"] = None
        return chunk

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self._completion_id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }


def openai_completion(events: Iterable[StreamEvent], *, model: str, completion_id: str, created: int) -> dict[str, Any]:
    """Collect a whole stream into one `chat.completion` (for `stream: false`)."""
    text: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    usage: Usage | None = None
    stop: StopReason = "end_turn"
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            reasoning.append(event.text)
        elif isinstance(event, ToolCall):
            function = {"name": event.name, "arguments": event.arguments}
            tool_calls.append({"id": event.id, "type": "function", "function": function})
        elif isinstance(event, Usage):
            usage = event
        elif isinstance(event, Finish):
            stop = event.reason
    content = "".join(text)
    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI sends null content on a tool-call-only turn; some clients test `content is None`.
        "content": None if tool_calls and not content else content,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": _finish_reason(stop, has_tool_calls=bool(tool_calls)),
        "logprobs": None,
    }
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": _usage_body(usage),
    }


def openai_error_body(error: Ki2apiError) -> dict[str, Any]:
    """`{"error": {...}}` as OpenAI sends it; the SDKs read `message`, `type`, `param` and `code`."""
    return {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}}


def openai_model_list(models: Sequence[tuple[str, ModelInfo]], *, created: int) -> dict[str, Any]:
    """`GET /v1/models`: every accepted id; `context_length` (OpenRouter's and LiteLLM's name) from Kiro's limits."""
    return {
        "object": "list",
        "data": [
            {
                "id": model_id,
                "object": "model",
                "created": created,
                "owned_by": "kiro",
                "context_length": info.max_input_tokens,
                "max_output_tokens": info.max_output_tokens,
                "kiro_model": info.model_id,
            }
            for model_id, info in models
        ],
    }

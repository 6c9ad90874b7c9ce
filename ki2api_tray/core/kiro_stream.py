"""Kiro event frames -> neutral stream events, one translator per response.

Reads each frame's JSON payload, assembles tool calls from their fragments, splits prompt-tag thinking
and bracket-text tool calls out of the answer, and closes every stream with exactly one Usage and one
Finish (kiro-protocol.md §6, §8, §9, §10).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

from .bracket_calls import BracketCallParser, is_json_object
from .errors import ContextLengthExceeded, ProtocolError, RateLimited, UpstreamError
from .eventstream import Frame
from .model import Finish, StopReason, StreamEvent, TextDelta, ThinkingDelta, ToolCall, Usage
from .thinking import ThinkingSplitter
from .tokencount import estimate_tokens

_NO_NAMES: Mapping[str, str] = MappingProxyType({})

# Only the stop reasons that tell the client something it cannot see for itself override ours; END_TURN
# and TOOL_USE are derived from what was actually emitted, so a client never gets `tool_use` without a
# tool call (e.g. when the call was truncated) or `end_turn` next to one (e.g. a bracket-text call).
_KIRO_STOP_REASONS: Mapping[str, StopReason] = MappingProxyType(
    {
        "MAX_TOKENS": "max_tokens",
        "MODEL_CONTEXT_WINDOW_EXCEEDED": "max_tokens",
        "CONTENT_FILTERED": "content_filter",
    }
)
# Longest piece of a non-JSON error payload quoted back to the client.
_MAX_QUOTED = 300


def cut_call_note(name: str, arguments: str, *, by: str, after_output: bool) -> str:
    """What the client reads instead of a tool call that was cut off (by Kiro, or by the max_tokens limit)."""
    lead = "\n\n" if after_output else ""
    # Kiro's JSON may carry a lone "\ud83d" escape (output cut inside a UTF-16 pair), which is not UTF-8;
    # the bytes are only counted here, so such a character counts as three instead of failing the stream.
    size = len(arguments.encode("utf-8", "surrogatepass"))
    return (
        f"{lead}[ki2api: your call to the tool `{name or 'unknown'}` was cut off by {by} after "
        f"{size} bytes of arguments, so it was not run. Retry with smaller pieces: "
        "for example, write the file in several smaller edits instead of one large write.]"
    )


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:8]}"


class _OpenCall:
    """A tool call whose `stop` frame has not arrived yet; fragments are kept exactly as sent."""

    __slots__ = ("name", "fragments")

    def __init__(self, name: str) -> None:
        self.name = name
        self.fragments: list[str] = []


class KiroStreamTranslator:
    """Translates the frames of one Kiro response into TextDelta / ThinkingDelta / ToolCall, Usage, Finish.

    `tool_names` maps Kiro-side tool names back to the client's; `known_tools` are names accepted in
    bracket-text calls; `input_tokens` is the local estimate used when Kiro reports nothing better;
    `context_window` turns Kiro's context-usage percentage into tokens. Once Finish has been returned or
    an error raised, the translator is done and `feed` returns nothing.
    """

    def __init__(
        self,
        *,
        tool_names: Mapping[str, str] = _NO_NAMES,
        known_tools: Collection[str] = (),
        thinking: bool = False,
        input_tokens: int = 0,
        context_window: int = 200_000,
        dedupe: bool = False,
        new_id: Callable[[], str] = _new_call_id,
    ) -> None:
        self._tool_names = tool_names
        self._input_tokens = input_tokens
        self._context_window = context_window
        self._dedupe = dedupe
        self._splitter = ThinkingSplitter() if thinking else None
        bracket_names = {name: name for name in known_tools}
        bracket_names.update((name, name) for name in tool_names.values())
        bracket_names.update(tool_names)
        self._brackets = BracketCallParser(bracket_names, new_id) if bracket_names else None

        self._open_calls: dict[str, _OpenCall] = {}
        self._closed_ids: set[str] = set()
        self._last_content: str | None = None
        self._emitted: list[str] = []
        self._has_output = False
        self._tool_calls = 0
        self._truncated = False
        self._context_input: int | None = None
        self._context_percent: float | None = None
        self._exact_input: int | None = None
        self._exact_output: int | None = None
        self._credits: float | None = None
        self._kiro_stop: StopReason | None = None
        self._done = False

    @property
    def has_output(self) -> bool:
        """Whether anything the client can see (text, thinking, a tool call) has been emitted."""
        return self._has_output

    def feed(self, frame: Frame) -> list[StreamEvent]:
        if self._done:
            return []
        kind = frame.message_type
        if kind == "exception":
            return self._on_exception(frame)
        if kind == "error":
            self._done = True
            raise self._error_from(frame)
        if kind != "event":
            return []
        event = frame.event_type
        if event == "assistantResponseEvent":
            content = self._payload(frame).get("content")
            # Events carrying only `followupPrompt` (or an empty delta) have nothing to show.
            return self._on_content(content) if isinstance(content, str) and content else []
        if event == "toolUseEvent":
            return self._on_tool_use(self._payload(frame))
        if event == "reasoningContentEvent":
            text = self._payload(frame).get("text")
            return self._record([ThinkingDelta(text)]) if isinstance(text, str) and text else []
        if event == "contextUsageEvent":
            self._on_context_usage(self._payload(frame))
        elif event == "meteringEvent":
            self._on_metering(self._payload(frame))
        elif event == "metadataEvent":
            self._on_metadata(self._payload(frame))
        return []

    def finish(self) -> list[StreamEvent]:
        """The upstream stream ended: release held text, settle open tool calls, then Usage and Finish."""
        if self._done:
            return []
        return self._close(forced=None)

    # --- payloads ---------------------------------------------------------------------------------

    def _payload(self, frame: Frame) -> dict[str, Any]:
        raw = frame.payload
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            self._done = True
            raise ProtocolError(f"Kiro sent a {frame.event_type} event whose payload is not valid JSON.") from exc
        if not isinstance(data, dict):
            self._done = True
            raise ProtocolError(f"Kiro sent a {frame.event_type} event whose payload is not a JSON object.")
        # Payloads are normally the event's own fields, but some producers wrap them as {"<eventType>": {...}}.
        inner = data.get(frame.event_type)
        if len(data) == 1 and isinstance(inner, dict):
            return inner
        return data

    # --- visible output -----------------------------------------------------------------------------

    def _on_content(self, content: str) -> list[StreamEvent]:
        if self._dedupe:
            # Kiro sometimes repeats a delta verbatim (§6.2); off by default because it also eats real
            # repeats such as two newline tokens in a row.
            if content == self._last_content:
                return []
            self._last_content = content
        if self._splitter is None and self._brackets is None:
            self._emitted.append(content)
            self._has_output = True
            return [TextDelta(content)]
        pieces: list[StreamEvent] = []
        if self._splitter is None:
            pieces.append(TextDelta(content))
        else:
            pieces.extend(self._splitter.feed(content))
        return self._record(self._through_brackets(pieces))

    def _through_brackets(self, pieces: list[StreamEvent]) -> list[StreamEvent]:
        if self._brackets is None:
            return pieces
        out: list[StreamEvent] = []
        for piece in pieces:
            if isinstance(piece, TextDelta):
                out.extend(self._brackets.feed(piece.text))
            else:
                out.append(piece)
        return out

    def _record(self, events: list[StreamEvent]) -> list[StreamEvent]:
        """Bookkeeping for everything that reaches the client: output estimate, flags, tool-call count."""
        for event in events:
            if isinstance(event, (TextDelta, ThinkingDelta)):
                self._emitted.append(event.text)
                self._has_output = self._has_output or bool(event.text)
            elif isinstance(event, ToolCall):
                self._emitted.append(event.arguments)
                self._has_output = True
                self._tool_calls += 1
        return events

    # --- tool calls -----------------------------------------------------------------------------------

    def _on_tool_use(self, data: dict[str, Any]) -> list[StreamEvent]:
        call_id = data.get("toolUseId")
        # A repeated start or stop for a call already settled must not produce it twice.
        if not isinstance(call_id, str) or not call_id or call_id in self._closed_ids:
            return []
        name = data.get("name")
        name = name if isinstance(name, str) else ""
        call = self._open_calls.get(call_id)
        if call is None:
            call = self._open_calls[call_id] = _OpenCall(name)
        elif not call.name:
            call.name = name
        piece = data.get("input")
        if isinstance(piece, str):
            call.fragments.append(piece)
        elif isinstance(piece, dict):
            call.fragments.append(json.dumps(piece, ensure_ascii=False, separators=(",", ":")))
        if data.get("stop") is True:
            return self._record(self._settle_call(call_id, stopped=True))
        return []

    def _settle_call(self, call_id: str, *, stopped: bool) -> list[StreamEvent]:
        """Emit a finished call, or explain its truncation instead.

        Kiro is known to cut large tool-call arguments mid-stream (big Write/Edit payloads). Running a
        call with half its arguments would be wrong, and returning an error makes agents repeat the same
        oversized call, so the call is dropped and the agent is told in plain text to retry in smaller
        pieces; the response then ends with `max_tokens`, which agents already treat as "output cut short".
        """
        call = self._open_calls.pop(call_id)
        self._closed_ids.add(call_id)
        arguments = "".join(call.fragments)
        if stopped and not arguments.strip():
            arguments = "{}"
        # Without a stop frame the call is only trusted if it is a complete object (JSON objects are
        # self-delimiting, so a parse means nothing was cut off).
        if arguments and is_json_object(arguments):
            name = self._tool_names.get(call.name, call.name)
            return [ToolCall(id=call_id, name=name, arguments=arguments)]
        self._truncated = True
        name = self._tool_names.get(call.name, call.name)
        return [TextDelta(cut_call_note(name, arguments, by="Kiro", after_output=self._has_output))]

    # --- usage and stop reason -------------------------------------------------------------------------

    def _on_context_usage(self, data: dict[str, Any]) -> None:
        percentage = _number(data.get("contextUsagePercentage"))
        if percentage is not None and percentage > 0:
            self._context_percent = min(percentage, 100.0)
            self._context_input = round(self._context_percent / 100 * self._context_window)

    def _on_metering(self, data: dict[str, Any]) -> None:
        credits = _number(data.get("usage"))
        if credits is not None:
            # A response may be metered in more than one event; each one is a charge.
            self._credits = (self._credits or 0.0) + credits

    def _on_metadata(self, data: dict[str, Any]) -> None:
        usage = data.get("tokenUsage")
        if isinstance(usage, dict):
            # The neutral Usage has no cache split, so cached prompt tokens count as input: clients use
            # input_tokens to judge how full the context is.
            keys = ("uncachedInputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
            counted = [count for count in (_number(usage.get(key)) for key in keys) if count is not None]
            if counted:
                self._exact_input = max(0, round(sum(counted)))
            output = _number(usage.get("outputTokens"))
            if output is not None:
                self._exact_output = max(0, round(output))
        stop = data.get("stopReason")
        if isinstance(stop, str) and stop in _KIRO_STOP_REASONS:
            self._kiro_stop = _KIRO_STOP_REASONS[stop]

    def _usage(self) -> Usage:
        if self._exact_input is not None:
            input_tokens = self._exact_input
        elif self._context_input is not None:
            input_tokens = self._context_input
        else:
            input_tokens = self._input_tokens
        if self._exact_output is not None:
            output_tokens = self._exact_output
        else:
            output_tokens = estimate_tokens("".join(self._emitted))
        exact = self._exact_input is not None and self._exact_output is not None
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            credits=self._credits,
            estimated=not exact,
            context_percent=self._context_percent,
        )

    def _close(self, *, forced: StopReason | None) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._splitter is not None:
            out.extend(self._record(self._through_brackets(list(self._splitter.flush()))))
        if self._brackets is not None:
            out.extend(self._record(list(self._brackets.flush())))
        for call_id in list(self._open_calls):
            out.extend(self._record(self._settle_call(call_id, stopped=False)))
        reason: StopReason
        if forced is not None:
            reason = forced
        elif self._kiro_stop is not None:
            reason = self._kiro_stop
        elif self._truncated:
            reason = "max_tokens"
        elif self._tool_calls:
            reason = "tool_use"
        else:
            reason = "end_turn"
        out.append(self._usage())
        out.append(Finish(reason))
        self._done = True
        return out

    # --- exceptions inside the stream -----------------------------------------------------------------

    def _on_exception(self, frame: Frame) -> list[StreamEvent]:
        kind = _header(frame, ":exception-type")
        message = _message_of(frame.payload) or kind or "no details given"
        if kind == "ContentLengthExceededException":
            if self._has_output:
                # Part of the answer is already with the client: end it the way a length cut-off ends.
                return self._close(forced="max_tokens")
            self._done = True
            raise ContextLengthExceeded(
                "The conversation is too long for the model: compact it or start a new one, then try again.",
                reason=kind,
            )
        self._done = True
        if kind == "ThrottlingException":
            raise RateLimited(f"Kiro is throttling requests, try again shortly: {message}", reason=kind)
        raise UpstreamError(
            f"Kiro reported an error in the middle of the answer ({kind or 'exception'}): {message}", reason=kind
        )

    @staticmethod
    def _error_from(frame: Frame) -> UpstreamError:
        code = _header(frame, ":error-code")
        message = _header(frame, ":error-message") or _message_of(frame.payload) or "no details given"
        return UpstreamError(
            f"Kiro reported an error in the middle of the answer ({code or 'error'}): {message}", reason=code or None
        )


def _header(frame: Frame, name: str) -> str:
    value = frame.headers.get(name, "")
    return value if isinstance(value, str) else ""


def _message_of(payload: bytes) -> str:
    """The human-readable message of an exception or error payload (`{"message": ...}`, or plain text)."""
    text = payload.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return text[:_MAX_QUOTED]
    if isinstance(data, dict):
        for key in ("message", "Message", "errorMessage"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def _number(value: object) -> float | None:
    """A JSON number as a float; None for anything else, including NaN and Infinity (json.loads accepts them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None

"""Event lists for the stream scenarios of kiro-protocol.md §11, and the prompt markers that select them.

Each helper returns `list[Event]`; concatenate them into a `StreamReply`. Without a scripted reply the
fake answers `reply_for(body)`: an echo of the current user message, shaped by any markers in it.

Markers (anywhere in the current user message; removed before echoing; several may be combined; a JSON
argument must not contain "]]"):
  [[fake:tool:NAME:JSON]]      a short text, then a tool call NAME with arguments JSON (repeatable)
  [[fake:bracket:NAME:JSON]]   the call written as "[Called NAME with args: JSON]" inside the text (§6.3)
  [[fake:truncated_tool:NAME]] a tool call whose JSON is cut off and never stopped
  [[fake:thinking]]            "<thinking>...</thinking>\n\n" before the echo, split across events (§10.1)
  [[fake:reasoning]]           the thought as reasoningContentEvent frames before the echo (§10.2)
  [[fake:duplicate]]           the first echo delta sent twice in a row (§6.2)
  [[fake:long:N]]              N text deltas "word0 word1 ..." instead of the echo
  [[fake:exception:TYPE]]      the echo, then an exception frame of that type (e.g. ThrottlingException)
  [[fake:error:STATUS]]        no stream: HTTP STATUS with Kiro's body for it (400, 402, 403, 429, 500, 503)
  [[fake:slow:SECONDS]]        nothing at all (not even headers) for SECONDS
  [[fake:pause:SECONDS]]       stall SECONDS after the first frame
  [[fake:disconnect]]          drop the connection after half the frames
  [[fake:corrupt]]             damage the message CRC of the second frame
  [[fake:bytes]] / [[fake:random:SEED]]   deliver one byte per write / random-size writes
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from typing import Any

from .replies import Chunking, ErrorReply, Event, Reply, StreamReply
from .validation import BAD_BEARER, IMPROPER, TOO_LONG

MONTHLY_LIMIT: dict[str, Any] = {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}
HIGH_TRAFFIC: dict[str, Any] = {
    "message": "I am experiencing high traffic, please try again shortly.",
    "reason": "INSUFFICIENT_MODEL_CAPACITY",
}
INTERNAL: dict[str, Any] = {
    "message": "Encountered an unexpected error when processing the request, please try again.",
    "reason": None,
}
UNAVAILABLE: dict[str, Any] = {"message": "Service Unavailable", "reason": None}
ERROR_BODIES: dict[int, dict[str, Any]] = {
    400: IMPROPER,
    402: MONTHLY_LIMIT,
    403: BAD_BEARER,
    429: HIGH_TRAFFIC,
    500: INTERNAL,
    503: UNAVAILABLE,
}

CONTENT_LENGTH_EXCEEDED = "ContentLengthExceededException"
THROTTLING = "ThrottlingException"
_EXCEPTION_MESSAGES = {CONTENT_LENGTH_EXCEEDED: TOO_LONG["message"], THROTTLING: "Rate exceeded"}

MARKER = re.compile(r"\[\[fake:([a-z_]+)(?::(.*?))?\]\]", re.DOTALL)
ECHO_PREFIX = "Echo: "
ECHO_CHARS = 200
THOUGHT = "The user wants an echo. I will repeat their words."


def pieces(value: str, size: int = 8) -> list[str]:
    """Cut text into deltas of `size` characters (code points, so never inside a character)."""
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def text(*chunks: str, model_id: str | None = None) -> list[Event]:
    """One assistantResponseEvent per chunk; newer hosts add the modelId to each (§6)."""
    extra = {"modelId": model_id} if model_id else {}
    return [("assistantResponseEvent", {"content": chunk, **extra}) for chunk in chunks]


def tool_use_id_for(name: str, arguments_json: str) -> str:
    """A stable `tooluse_` id (22 characters after the prefix, like Kiro's) derived from the call."""
    digest = hashlib.sha256(f"{name}\0{arguments_json}".encode()).hexdigest()
    return "tooluse_" + digest[:22]


def tool_call(name: str, arguments_json: str, fragments: int = 3, tool_use_id: str | None = None) -> list[Event]:
    """§6.1: a start frame (no input), `fragments` input pieces that only join to JSON, a stop frame."""
    use_id = tool_use_id or tool_use_id_for(name, arguments_json)
    size = max(1, -(-len(arguments_json) // max(1, fragments)))
    parts = [arguments_json[i : i + size] for i in range(0, len(arguments_json), size)]
    return [
        ("toolUseEvent", {"name": name, "toolUseId": use_id}),
        *[("toolUseEvent", {"input": part, "name": name, "toolUseId": use_id}) for part in parts],
        ("toolUseEvent", {"name": name, "stop": True, "toolUseId": use_id}),
    ]


def truncated_tool_call(name: str, partial_json: str = '{"city": "Par', tool_use_id: str | None = None) -> list[Event]:
    """§11: a tool call cut off mid-JSON: unbalanced braces and no stop frame."""
    return tool_call(name, partial_json, fragments=2, tool_use_id=tool_use_id)[:-1]


def thinking(thought: str, answer: str, size: int = 8) -> list[Event]:
    """§10.1: content starting `<thinking>…</thinking>\\n\\n` then the answer, cut so the tags straddle events."""
    return text(*pieces(f"<thinking>{thought}</thinking>\n\n{answer}", size))


def reasoning_events(thought: str, answer: str, signature: str = "fake-signature", size: int = 16) -> list[Event]:
    """§10.2: the thought as reasoningContentEvent frames (signature on the last), then the answer as text."""
    parts = pieces(thought, size)
    events: list[Event] = [("reasoningContentEvent", {"text": part}) for part in parts[:-1]]
    events.append(("reasoningContentEvent", {"signature": signature, "text": parts[-1]}))
    return events + text(*pieces(answer))


def bracket_call(name: str, args: dict[str, Any], lead: str = "Let me check. ") -> list[Event]:
    """§6.3: a tool call written into the text as `[Called NAME with args: {...}]`, split across events."""
    call = f"[Called {name} with args: {json.dumps(args, ensure_ascii=False)}]"
    return text(*pieces(lead + call, 10))


def usage(context_percentage: float = 1.5, credits: float = 0.12) -> list[Event]:
    """The trailer of every normal stream (§11): context usage, then metering."""
    return [
        ("contextUsageEvent", {"contextUsagePercentage": context_percentage}),
        ("meteringEvent", {"unit": "credit", "usage": credits}),
    ]


def token_usage(input_tokens: int, output_tokens: int, stop_reason: str = "END_TURN") -> list[Event]:
    """§6: metadataEvent with AWS's tokenUsage shape (most hosts do not send it)."""
    tokens = {
        "uncachedInputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + output_tokens,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 0,
    }
    return [("metadataEvent", {"stopReason": stop_reason, "tokenUsage": tokens})]


def exception(exception_type: str, message: str | None = None) -> list[Event]:
    """§6.4: an exception frame inside the 200 stream, e.g. exception(CONTENT_LENGTH_EXCEEDED)."""
    return [(exception_type, {"message": message or _EXCEPTION_MESSAGES.get(exception_type, exception_type)})]


def ignored_events() -> list[Event]:
    """Events a client must skip without failing (§6: followups, web links, metadata ids)."""
    return [
        ("messageMetadataEvent", {"conversationId": "00000000-0000-4000-8000-000000000000", "utteranceId": "u-1"}),
        ("supplementaryWebLinksEvent", {"supplementaryWebLinks": [{"title": "t", "url": "https://example.com"}]}),
        ("followupPromptEvent", {"followupPrompt": {"content": "More?", "userIntent": "EXPLAIN_CODE_SELECTION"}}),
    ]


# ---- the default reply ---------------------------------------------------------------------------------


def current_message(body: dict[str, Any]) -> dict[str, Any]:
    message = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message if isinstance(message, dict) else {}


def echo_text(content: str) -> str:
    """What the default reply says: "Echo: " + the first 200 characters of the marker-free message."""
    return ECHO_PREFIX + MARKER.sub("", content).strip()[:ECHO_CHARS]


def _split_name_args(arg: str) -> tuple[str, str]:
    name, _, args = arg.partition(":")
    return name, args or "{}"


def reply_for(body: dict[str, Any]) -> Reply:
    """The reply for a valid request with nothing scripted: the echo, shaped by the markers in the message."""
    message = current_message(body)
    content = str(message.get("content", ""))
    model_id = str(message.get("modelId", ""))
    answer = echo_text(content)
    markers = [(m.group(1), m.group(2) or "") for m in MARKER.finditer(content)]
    kinds = {kind for kind, _ in markers}
    opts: dict[str, Any] = {}
    head: list[Event] = []
    calls: list[Event] = []
    tail: list[Event] = usage()
    for kind, arg in markers:
        if kind == "error":
            status = int(arg) if arg.isdigit() else 500
            return ErrorReply(status, ERROR_BODIES.get(status, INTERNAL))
        if kind == "tool":
            name, args = _split_name_args(arg)
            calls += text(f"I'll call {name}.", model_id=model_id) + tool_call(name, args)
        elif kind == "bracket":
            name, args = _split_name_args(arg)
            calls += bracket_call(name, json.loads(args))
        elif kind == "truncated_tool":
            calls += truncated_tool_call(arg or "get_weather")
        elif kind == "exception":
            tail = exception(arg or THROTTLING)
        elif kind == "slow":
            opts["first_byte_delay"] = float(arg or 1)
        elif kind == "pause":
            opts["pause"] = (1, float(arg or 1))
        elif kind == "bytes":
            opts["chunking"] = Chunking.one_byte()
        elif kind == "random":
            opts["chunking"] = Chunking.random(int(arg or 0))
    if "long" in kinds:
        count = int(next(arg for kind, arg in markers if kind == "long") or 100)
        head = text(*[f"word{i} " for i in range(count)], model_id=model_id)
    elif "thinking" in kinds:
        head = thinking(THOUGHT, answer)
    elif "reasoning" in kinds:
        head = reasoning_events(THOUGHT, answer)
    elif not calls or kinds & {"exception", "duplicate"}:
        head = text(*pieces(answer), model_id=model_id)
    if "duplicate" in kinds:
        head = head[:1] + head
    reply = StreamReply([*head, *calls, *tail], **opts)
    if "disconnect" in kinds:
        reply = replace(reply, disconnect_after_frames=max(1, len(reply.events) // 2))
    if "corrupt" in kinds:
        reply = replace(reply, corrupt_frame=min(1, len(reply.events) - 1))
    return reply

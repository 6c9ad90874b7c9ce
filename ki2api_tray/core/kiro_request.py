"""Neutral `ChatRequest` -> the JSON body of Kiro's `generateAssistantResponse` (kiro-protocol.md §3.3).

History shaping lives in `history`, tool definitions in `tool_specs`; this module places the system
prompt, thinking switches, images and tool results, and refuses bodies Kiro would reject for size.
"""

from __future__ import annotations

import json
from base64 import b64decode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import ContextLengthExceeded, InvalidRequest, UnsupportedImage
from .history import EMPTY_RESULT, AssistantTurn, Conversation, UserTurn, shape_conversation
from .model import Adjustment, ChatRequest, ImagePart, ModelInfo, Thinking, ToolCallPart, ToolResultPart
from .tool_specs import is_server_tool, kiro_tool_name, shortened_names, tool_specifications

ORIGIN = "AI_EDITOR"
# Kiro rejects empty content. JW moved from "." to "(empty placeholder)" (JW #171) because a bare dot
# confused the model; a short neutral word does the same job.
EMPTY_PLACEHOLDER = "(empty)"
CONTINUE_PLACEHOLDER = "Continue"  # JW's text for a current turn with nothing in it (e.g. after an assistant prefill)
# AIC keeps images only in the last 5 history messages; older screenshots are what push bodies past the
# ~615 KB limit (§3.6), and the model rarely needs them again.
HISTORY_IMAGE_WINDOW = 5
IMAGE_OMITTED_NOTE = "(An image was here; ki2api sends only the images of the most recent messages.)"
DEFAULT_MAX_BODY_BYTES = 600_000  # under the ~615 KB at which SAM saw "Improperly formed request" (§3.6)

_IMAGE_FORMATS = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}

# Prompt-tag thinking (§10.1). Budgets are advice written into the prompt, not enforced limits; the
# clamp follows AIC's lower bound and sits near Claude Code's largest budget (31,999).
_MIN_BUDGET, _MAX_BUDGET, _DEFAULT_BUDGET = 1_024, 32_000, 16_000
_EFFORT_BUDGET = {"low": 4_000, "medium": 10_000, "high": 20_000, "max": 32_000}
_THINKING_MARKER = "<thinking_mode>"


@dataclass(frozen=True)
class KiroRequest:
    """A request ready to POST: `tool_names` maps each shortened tool name back to the client's name."""

    body: bytes
    model_id: str
    tool_names: Mapping[str, str] = field(default_factory=dict, hash=False)
    thinking: bool = False
    # What was changed on the way (merged turns, renamed tools, ...): facts for the request log, never text.
    adjustments: tuple[Adjustment, ...] = ()
    profile_arn: str | None = None  # the ARN in `body`; another account's request swaps it
    affinity: str = ""  # which conversation this is, so a pool of accounts keeps it on one account


def _budget(thinking: Thinking | None) -> int:
    if thinking is not None and thinking.budget_tokens is not None:
        budget = thinking.budget_tokens
    elif thinking is not None and thinking.effort is not None:
        budget = _EFFORT_BUDGET[thinking.effort]
    else:
        budget = _DEFAULT_BUDGET
    return max(_MIN_BUDGET, min(_MAX_BUDGET, budget))


def _native_thinking_fields(thinking: Thinking | None) -> dict[str, Any]:
    """`additionalModelRequestFields` for models that advertise it (§10.2); Kiro defaults the effort."""
    fields: dict[str, Any] = {"thinking": {"type": "adaptive", "display": "summarized"}}
    effort: str | None = None
    if thinking is not None and thinking.effort is not None:
        effort = thinking.effort
    elif thinking is not None and thinking.budget_tokens is not None:
        budget = thinking.budget_tokens
        effort = "low" if budget <= 4_096 else "medium" if budget <= 16_384 else "high"
    if effort is not None:
        fields["output_config"] = {"effort": effort}
    return fields


def _image(part: ImagePart) -> dict[str, Any]:
    if not part.data:
        raise UnsupportedImage(
            "Kiro only takes images sent inline as base64 data; this image was given only as a URL.",
            param="messages",
        )
    image_format = _IMAGE_FORMATS.get(part.media_type.strip().lower())
    if image_format is None:
        raise UnsupportedImage(
            f"Kiro accepts JPEG, PNG, GIF and WebP images, not {part.media_type or 'an image without a type'}.",
            param="messages",
        )
    # Kiro wants plain base64; MIME-style line breaks from some clients would make it invalid.
    data = "".join(part.data.split())
    try:
        valid = bool(b64decode(data, validate=True))
    except ValueError:  # binascii.Error, or a non-ASCII character
        valid = False
    if not valid:
        # Kiro answers a bad image with a bare "Improperly formed request"; say what is wrong instead.
        raise UnsupportedImage("An image's data is not valid base64, so Kiro cannot read it.", param="messages")
    return {"format": image_format, "source": {"bytes": data}}


def _without_empty_keys(value: Any) -> Any:
    # AIC: Kiro rejects objects with an empty-string key anywhere in a tool input.
    if isinstance(value, dict):
        return {k: _without_empty_keys(v) for k, v in value.items() if k != ""}
    if isinstance(value, list):
        return [_without_empty_keys(v) for v in value]
    return value


def _tool_input(arguments: str) -> dict[str, Any]:
    """`input` must be a JSON object. Arguments that are not one (truncated JSON from an interrupted
    stream, a bare string) are kept verbatim under `raw` rather than dropped, so the model sees them."""
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments, parse_constant=_not_json_constant)
        if not isinstance(parsed, dict):
            return {"raw": arguments}
        result: dict[str, Any] = _without_empty_keys(parsed)
    except (ValueError, RecursionError):
        return {"raw": arguments}
    return result


def _not_json_constant(name: str) -> Any:
    # Python's parser accepts NaN and Infinity, but Kiro rejects a body that contains them.
    raise ValueError(name)


def _tool_use(call: ToolCallPart) -> dict[str, Any]:
    return {"toolUseId": call.id, "name": kiro_tool_name(call.name), "input": _tool_input(call.arguments)}


def _tool_result(result: ToolResultPart) -> dict[str, Any]:
    return {
        "toolUseId": result.tool_call_id,
        "content": [{"text": result.content if result.content.strip() else EMPTY_RESULT}],
        "status": "error" if result.is_error else "success",
    }


def _with_system(system: str, text: str) -> str:
    # The system prompt becomes a prefix of the first user message (JW, AIC, KI2): Kiro has no system
    # field, and a separate user turn would need a synthetic assistant reply the model never gave.
    if not system.strip():
        return text
    return f"{system}\n\n{text}" if text.strip() else system


def _user_text(turn: UserTurn, *, system: str, omitted_images: int) -> str:
    text = "\n".join(turn.texts)
    if omitted_images:
        text = "\n".join(filter(None, [text, *([IMAGE_OMITTED_NOTE] * omitted_images)]))
    return _with_system(system, text)


def _history_user(turn: UserTurn, *, system: str, keep_images: bool, model: ModelInfo) -> dict[str, Any]:
    text = _user_text(turn, system=system, omitted_images=0 if keep_images else len(turn.images))
    message: dict[str, Any] = {
        "content": text if text.strip() else EMPTY_PLACEHOLDER,
        "modelId": model.model_id,
        "origin": ORIGIN,
    }
    if keep_images and turn.images:
        message["images"] = _images(turn.images, model)
    if turn.results:
        message["userInputMessageContext"] = {"toolResults": [_tool_result(r) for r in turn.results]}
    return {"userInputMessage": message}


def _history_assistant(turn: AssistantTurn) -> dict[str, Any]:
    # Earlier reasoning goes back as the tagged prefix the model itself writes (KRS, §10.1).
    thinking = "\n".join(t for t in turn.thinking if t.strip())
    text = "\n".join(turn.texts)
    content = f"<thinking>{thinking}</thinking>\n\n{text}" if thinking else text
    message: dict[str, Any] = {"content": content if content.strip() else EMPTY_PLACEHOLDER}
    if turn.calls:  # an empty `toolUses: []` is rejected, so the key is left out (SAM)
        message["toolUses"] = [_tool_use(c) for c in turn.calls]
    return {"assistantResponseMessage": message}


def _images(images: Sequence[ImagePart], model: ModelInfo) -> list[dict[str, Any]]:
    if not model.supports_images:
        raise UnsupportedImage(f"The model {model.model_id} does not accept images.", param="messages")
    return [_image(i) for i in images]


def _tool_choice_note(request: ChatRequest) -> str:
    # Kiro has no tool_choice field and AUTO trigger type can cause 400s (KRS), so the demand is written
    # into the message instead.
    choice = request.tool_choice
    if choice is None or choice.mode in ("auto", "none"):
        return ""
    if choice.mode == "tool" and choice.name:
        return f"You must respond by calling the tool `{kiro_tool_name(choice.name)}`."
    return "You must respond by calling one of the available tools."


def _history_json(conversation: Conversation, *, system: str, model: ModelInfo) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    first_image_index = len(conversation.history) - HISTORY_IMAGE_WINDOW
    for index, turn in enumerate(conversation.history):
        if isinstance(turn, UserTurn):
            prefix = system if index == 0 else ""
            keep = index >= first_image_index
            history.append(_history_user(turn, system=prefix, keep_images=keep, model=model))
        else:
            history.append(_history_assistant(turn))
    return history


def _current_json(
    conversation: Conversation,
    request: ChatRequest,
    *,
    model: ModelInfo,
    tools: list[dict[str, Any]],
    thinking_tags: bool,
    reminder: str,
) -> dict[str, Any]:
    turn = conversation.current
    system = "" if conversation.history else request.system
    content = _user_text(turn, system=system, omitted_images=0)
    if not content.strip():
        content = CONTINUE_PLACEHOLDER
    note = _tool_choice_note(request) if tools else ""
    for line in (note, reminder):
        if line:
            content = f"{content}\n\n{line}"
    if thinking_tags and _THINKING_MARKER not in content and _THINKING_MARKER not in request.system:
        # JW puts the tags on the current message, the turn the model reads most closely (§10.1).
        budget = _budget(request.thinking)
        tags = f"<thinking_mode>enabled</thinking_mode><max_thinking_length>{budget}</max_thinking_length>"
        content = f"{tags}\n\n{content}"
    message: dict[str, Any] = {"content": content, "modelId": model.model_id, "origin": ORIGIN}
    if turn.images:
        message["images"] = _images(turn.images, model)
    context: dict[str, Any] = {}
    if tools:
        context["tools"] = tools
    if turn.results:
        context["toolResults"] = [_tool_result(r) for r in turn.results]
    if context:
        message["userInputMessageContext"] = context
    return {"userInputMessage": message}


def _encode(body: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate from a client's JSON escape cannot be UTF-8; \u-escaping keeps it valid JSON.
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def build_kiro_request(
    request: ChatRequest,
    *,
    model: ModelInfo,
    profile_arn: str | None,
    conversation_id: str,
    thinking: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    reminder: str = "",
) -> KiroRequest:
    """The Kiro body for `request`; deterministic for a given `conversation_id`.

    Thinking is switched on by `thinking` (a `-thinking` model name) or `request.thinking`: natively for
    models that advertise it (§10.2), else with prompt tags (§10.1). Raises `InvalidRequest` for an empty
    conversation, `UnsupportedImage`, and `ContextLengthExceeded` when the body is over `max_body_bytes`.
    """
    if not request.messages:
        raise InvalidRequest("messages must contain at least one message", param="messages")
    send_tools = request.tool_choice is None or request.tool_choice.mode != "none"
    # With tool_choice "none" Kiro gets no tool specs, so earlier tool traffic must become plain text.
    conversation = shape_conversation(request.messages, tools_as_text=not send_tools)
    history_tools = list(
        dict.fromkeys(c.name for t in conversation.history if isinstance(t, AssistantTurn) for c in t.calls)
    )
    tools = tool_specifications(request.tools, history_tools) if send_tools else []
    wants_thinking = thinking or request.thinking is not None
    native = wants_thinking and model.supports_native_thinking

    state: dict[str, Any] = {"chatTriggerType": "MANUAL", "conversationId": conversation_id}
    state["currentMessage"] = _current_json(
        conversation, request, model=model, tools=tools, thinking_tags=wants_thinking and not native, reminder=reminder
    )
    if conversation.history:
        state["history"] = _history_json(conversation, system=request.system, model=model)
    body: dict[str, Any] = {"conversationState": state}
    if profile_arn:  # API keys and (by default) Builder ID send none (kiro-protocol-2026.md §2.4, §3)
        body["profileArn"] = profile_arn
    if native:
        body["additionalModelRequestFields"] = _native_thinking_fields(request.thinking)

    encoded = _encode(body)
    if len(encoded) > max_body_bytes:
        raise ContextLengthExceeded(
            f"This conversation is too long for Kiro: the request would be {len(encoded):,} bytes and Kiro "
            f"accepts about {max_body_bytes:,}. Compact or shorten the conversation (for example drop old "
            "messages, large tool results or images) and try again."
        )
    sent_names = [t.name for t in request.tools if not is_server_tool(t.name)] + history_tools
    tool_names = shortened_names(sent_names) if tools else {}
    return KiroRequest(
        body=encoded,
        model_id=model.model_id,
        tool_names=MappingProxyType(tool_names),
        thinking=wants_thinking,
        adjustments=_adjustments(
            request, conversation, tool_names, send_tools=send_tools, native=native, tags=wants_thinking and not native
        ),
        profile_arn=profile_arn,
    )


def _adjustments(
    request: ChatRequest,
    conversation: Conversation,
    tool_names: Mapping[str, str],
    *,
    send_tools: bool,
    native: bool,
    tags: bool,
) -> tuple[Adjustment, ...]:
    """What the Kiro body differs in from what the client sent, as counts and names (never text)."""
    found: list[Adjustment] = []
    turns = len(conversation.history) + 1
    if len(request.messages) > turns:
        found.append(Adjustment("history_merged", f"{len(request.messages)} -> {turns}"))
    if request.system.strip():
        found.append(Adjustment("system_in_first_message"))
    sent_calls = sum(1 for m in request.messages for p in m.parts if isinstance(p, ToolCallPart))
    kept_calls = sum(len(t.calls) for t in conversation.history if isinstance(t, AssistantTurn))
    if sent_calls > kept_calls:
        found.append(Adjustment("tool_calls_as_text", str(sent_calls - kept_calls)))
    found.extend(
        Adjustment("tool_renamed", f"{long} -> {short}") for short, long in tool_names.items() if short != long
    )
    found.extend(Adjustment("tool_dropped", t.name) for t in request.tools if send_tools and is_server_tool(t.name))
    if request.tools and not send_tools:
        found.append(Adjustment("tools_withheld", str(len(request.tools))))
    elif send_tools and request.tools and _tool_choice_note(request):
        found.append(Adjustment("tool_choice_as_text"))
    first_image_index = len(conversation.history) - HISTORY_IMAGE_WINDOW
    omitted = sum(
        len(t.images) for i, t in enumerate(conversation.history) if isinstance(t, UserTurn) and i < first_image_index
    )
    if omitted:
        found.append(Adjustment("images_omitted", str(omitted)))
    if native:
        found.append(Adjustment("thinking_native"))
    elif tags:
        found.append(Adjustment("thinking_prompt"))
    return tuple(found)

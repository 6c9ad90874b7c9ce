"""OpenAI Responses API request body (`POST /v1/responses`, what Codex speaks) -> neutral `ChatRequest`.

The Responses API sends a flat list of input items (messages, function calls, their outputs, reasoning)
and tools that may be grouped into namespaces or be "custom" (free-form text input). Kiro only knows
flat function tools, so namespaces are flattened and custom tools become a function taking one string;
`ToolOrigin`s remember how to name each call again on the way back. Built-in tools ki2api cannot run are
listed in `dropped_tools` (the server logs them) and never reach Kiro.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .data_url import image_from_data_url
from .errors import InvalidRequest, UnsupportedImage
from .model import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    TextPart,
    Thinking,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from .openai_options import non_empty_str, show, thinking_of
from .responses_tools import CUSTOM_INPUT, ToolOrigin, flat_name, responses_tool_choice, responses_tools

# Kiro speaks Claude's effort scale: OpenAI's extra rungs fold onto the nearest one it has.
_SYSTEM_ROLES = frozenset({"system", "developer"})
_SKIPPED_ITEMS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "image_generation_call",
        "code_interpreter_call",
        "mcp_list_tools",
        "compaction",
        "compaction_trigger",
        "tool_search_call",
        "tool_search_output",
        "additional_tools",
    }
)


@dataclass(frozen=True)
class ResponsesRequest:
    """The neutral request plus what the Responses renderer and the server need to answer in kind.

    `echo` holds request fields a Response object repeats (tools, tool_choice, instructions, ...).
    """

    chat: ChatRequest
    origins: Mapping[str, ToolOrigin] = field(default_factory=dict, hash=False)
    web_search: bool = False
    dropped_tools: tuple[str, ...] = ()
    skipped_items: tuple[str, ...] = ()
    previous_response_id: str | None = None
    store: bool = True
    echo: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def after(self, history: tuple[Message, ...]) -> ResponsesRequest:
        """This request continuing a stored conversation (`previous_response_id`)."""
        return replace(self, chat=replace(self.chat, messages=history + self.chat.messages))


def responses_to_chat(body: object) -> ResponsesRequest:
    """Translate a `/v1/responses` body; fields Kiro has no use for (temperature, metadata, ...) are ignored."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("`model` must be a non-empty string naming the model to use.", param="model")
    specs, origins, web_search, dropped = responses_tools(body.get("tools"))
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("`instructions` must be a string.", param="instructions")
    system, messages, skipped = _input(body.get("input"), origins)
    if instructions:
        system = [instructions, *system]
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise InvalidRequest("`previous_response_id` must be a response id string.", param="previous_response_id")
    store = _optional_bool(body.get("store"), "store", default=True)
    chat = ChatRequest(
        model=model,
        messages=messages,
        system="\n\n".join(system),
        tools=specs,
        tool_choice=responses_tool_choice(body.get("tool_choice"), specs, origins),
        max_tokens=_max_output_tokens(body.get("max_output_tokens")),
        stream=_optional_bool(body.get("stream"), "stream", default=False),
        thinking=_thinking(body.get("reasoning")),
        # Codex sends true; false means one tool call per answer, which the output guard enforces.
        parallel_tool_calls=_optional_bool(body.get("parallel_tool_calls"), "parallel_tool_calls", default=True),
    )
    echo = {key: body[key] for key in _ECHOED if key in body}
    return ResponsesRequest(chat, origins, web_search, dropped, skipped, previous, store, echo)


_ECHOED = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "reasoning",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
)


# --- input items -----------------------------------------------------------------------------


class _Conversation:
    """Collects items into neutral messages: consecutive assistant items form one turn, as do tool outputs."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.messages: list[Message] = []

    def add(self, role: Literal["user", "assistant"], parts: tuple[Part, ...], *, merge: bool) -> None:
        last = self.messages[-1] if self.messages else None
        if merge and last is not None and last.role == role and _mergeable(last, role):
            self.messages[-1] = Message(role, last.parts + parts)
        else:
            self.messages.append(Message(role, parts))


def _mergeable(message: Message, role: str) -> bool:
    # Tool outputs merge only with tool outputs: a user's words after them start their own message.
    return role == "assistant" or all(isinstance(p, ToolResultPart) for p in message.parts)


def _input(raw: object, origins: Mapping[str, ToolOrigin]) -> tuple[list[str], tuple[Message, ...], tuple[str, ...]]:
    if isinstance(raw, str):
        return [], (Message("user", (TextPart(raw),)),), ()
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("`input` must be a string or a non-empty list of input items.", param="input")
    names = {(o.namespace, o.name): flat for flat, o in origins.items()}
    conversation = _Conversation()
    skipped: list[str] = []
    for index, item in enumerate(raw):
        path = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"`{path}` must be an input item object.", param=path)
        kind = item.get("type", "message")
        if kind == "message":
            _message(conversation, item, path)
        elif kind in ("function_call", "custom_tool_call"):
            conversation.add("assistant", (_call(item, path, kind, names),), merge=True)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = non_empty_str(item.get("call_id"), f"{path}.call_id")
            result = ToolResultPart(call_id, _output_text(item.get("output"), f"{path}.output"))
            conversation.add("user", (result,), merge=True)
        elif kind == "reasoning":
            thought = _reasoning_text(item)
            if thought:
                conversation.add("assistant", (ThinkingPart(thought),), merge=True)
        elif kind == "item_reference":
            raise InvalidRequest(
                f"`{path}` is an item_reference; ki2api keeps no items, so send the item itself "
                "(or use previous_response_id with a response from this ki2api).",
                param=path,
            )
        elif isinstance(kind, str) and kind in _SKIPPED_ITEMS:
            skipped.append(kind)
        else:
            raise InvalidRequest(
                f"`{path}.type` {show(kind)} is not an input item ki2api can send to Kiro.", param=f"{path}.type"
            )
    if not conversation.messages:
        raise InvalidRequest(
            "`input` must contain at least one user or assistant item, not only system text.", param="input"
        )
    return conversation.system, tuple(conversation.messages), tuple(skipped)


def _message(conversation: _Conversation, item: dict[str, Any], path: str) -> None:
    role = item.get("role")
    content = item.get("content")
    if role in _SYSTEM_ROLES:
        text = "".join(p.text for p in _parts(content, f"{path}.content") if isinstance(p, TextPart))
        if text:
            conversation.system.append(text)
    elif role == "user":
        conversation.add("user", _parts(content, f"{path}.content"), merge=False)
    elif role == "assistant":
        conversation.add("assistant", _parts(content, f"{path}.content"), merge=True)
    else:
        raise InvalidRequest(
            f"`{path}.role` must be one of user, assistant, system or developer; got {show(role)}.",
            param=f"{path}.role",
        )


def _parts(content: object, path: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise InvalidRequest(f"`{path}` must be a string or a list of content parts.", param=path)
    parts: list[Part] = []
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        kind = _type_of(part, part_path)
        assert isinstance(part, dict)
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(TextPart(_string(part.get("text"), f"{part_path}.text")))
        elif kind == "refusal":
            parts.append(TextPart(_string(part.get("refusal"), f"{part_path}.refusal")))
        elif kind == "input_image":
            parts.append(_image(part, part_path))
        else:
            raise InvalidRequest(
                f"`{part_path}` is a {kind} part; ki2api can only send text and images to Kiro.", param=part_path
            )
    return tuple(parts)


def _image(part: dict[str, Any], path: str) -> ImagePart:
    url = part.get("image_url")
    if not isinstance(url, str):
        raise UnsupportedImage(
            f"`{path}.image_url` must be a data: or http(s) URL (file ids are not supported).",
            param=f"{path}.image_url",
        )
    if url[:8].lower().startswith(("http://", "https://")):
        return ImagePart(url=url)
    try:
        return image_from_data_url(url)
    except ValueError as reason:
        raise UnsupportedImage(f"`{path}.image_url` {reason}.", param=f"{path}.image_url") from None


def _call(item: dict[str, Any], path: str, kind: str, names: Mapping[tuple[str | None, str], str]) -> ToolCallPart:
    call_id = non_empty_str(item.get("call_id"), f"{path}.call_id")
    name = non_empty_str(item.get("name"), f"{path}.name")
    namespace = item.get("namespace") if isinstance(item.get("namespace"), str) else None
    flat = names.get((namespace, name)) or (flat_name(namespace, name) if namespace else name)
    if kind == "custom_tool_call":
        text = _string(item.get("input", ""), f"{path}.input")
        return ToolCallPart(call_id, flat, json.dumps({CUSTOM_INPUT: text}, ensure_ascii=False))
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        raise InvalidRequest(
            f"`{path}.arguments` must be a string holding JSON, as the model produced it.", param=f"{path}.arguments"
        )
    return ToolCallPart(call_id, flat, arguments)


def _output_text(output: object, path: str) -> str:
    """A tool's output: a string, or a list of parts whose text is joined (images cannot go back to Kiro here)."""
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise InvalidRequest(f"`{path}` must be a string or a list of content parts.", param=path)
    texts: list[str] = []
    for index, part in enumerate(output):
        kind = _type_of(part, f"{path}[{index}]")
        assert isinstance(part, dict)
        if kind in ("input_text", "output_text", "text"):
            texts.append(_string(part.get("text"), f"{path}[{index}].text"))
        else:
            texts.append(f"[{kind} omitted: ki2api sends only text tool output to Kiro]")
    return "\n".join(texts)


def _reasoning_text(item: dict[str, Any]) -> str:
    texts: list[str] = []
    for key in ("summary", "content"):
        entries = item.get(key)
        if isinstance(entries, list):
            texts.extend(e["text"] for e in entries if isinstance(e, dict) and isinstance(e.get("text"), str))
    return "\n".join(t for t in texts if t)


# --- options and scalars ---------------------------------------------------------------------


def _thinking(raw: object) -> Thinking | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest('`reasoning` must be an object such as {"effort": "medium"}.', param="reasoning")
    return thinking_of(raw.get("effort"), "reasoning.effort")


def _max_output_tokens(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidRequest(
            f"`max_output_tokens` must be a positive integer; got {show(raw)}.", param="max_output_tokens"
        )
    return raw


def _type_of(value: object, path: str) -> str:
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{path}` must be an object with a `type`.", param=path)
    kind = value.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidRequest(f"`{path}.type` must be a string.", param=f"{path}.type")
    return kind


def _optional_bool(raw: object, param: str, *, default: bool) -> bool:
    if raw is None:
        return default
    if not isinstance(raw, bool):
        raise InvalidRequest(f"`{param}` must be true or false.", param=param)
    return raw


def _string(raw: object, param: str) -> str:
    if not isinstance(raw, str):
        raise InvalidRequest(f"`{param}` must be a string.", param=param)
    return raw



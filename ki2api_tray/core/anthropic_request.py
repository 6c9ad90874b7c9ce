"""Anthropic Messages request body -> neutral `ChatRequest`, and the count_tokens estimate.

Lenient on purpose: Claude Code must never get a 4xx for a request the real API would accept, so unknown
fields and block types are dropped. Only structurally impossible input raises `InvalidRequest`, whose
`param` is the JSON path of the culprit (e.g. `messages[3].content[0].source`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from .errors import InvalidRequest, UnsupportedImage
from .model import (
    ChatRequest,
    Effort,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    Role,
    TextPart,
    Thinking,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from .tokencount import estimate_request_tokens

_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant"}
_TOOL_CHOICE_MODES: dict[str, Literal["auto", "any", "none"]] = {"auto": "auto", "any": "any", "none": "none"}
_EFFORTS: dict[str, Effort] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    # Opus 4.7+ knows `xhigh`; the neutral model stops at `max`, the nearest stronger setting.
    "xhigh": "max",
}
# Kiro's own default for adaptive thinking when no effort is given (kiro-protocol.md §10.2).
_DEFAULT_ADAPTIVE_EFFORT: Effort = "high"
# A tool with no input_schema still needs an object schema: Kiro rejects a toolSpecification without one.
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

# Fields ki2api reads itself; any other top-level field is dropped and listed.
_READ_FIELDS = frozenset(
    {
        "model", "messages", "system", "tools", "tool_choice", "max_tokens", "stream", "thinking",
        "output_config", "output_format", "stop_sequences",
    }
)  # fmt: skip

_BlockReader = Callable[[dict[str, Any], Role, str], list[Part]]


def anthropic_to_chat(body: object) -> ChatRequest:
    """Translate a `/v1/messages` body; raises only `InvalidRequest` (or its subclasses)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("`model` must be a non-empty string naming the model to use.", param="model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("`messages` must be a non-empty list of messages.", param="messages")

    system = [_plain_text(body.get("system"), "system")]
    messages: list[Message] = []
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"`{where}` must be an object with `role` and `content`.", param=where)
        role = raw.get("role")
        if role == "system":
            # Claude Code (and some SDK wrappers) put system text inside `messages`; the real API
            # refuses it, but the intent is clear, so it joins the top-level system prompt.
            system.append(_plain_text(raw.get("content"), f"{where}.content"))
        elif isinstance(role, str) and role in _ROLES:
            messages.append(Message(role=_ROLES[role], parts=_parts(raw.get("content"), _ROLES[role], where)))
        else:
            raise InvalidRequest(f'`{where}.role` must be "user" or "assistant".', param=f"{where}.role")
    if not messages:
        raise InvalidRequest("`messages` must contain at least one user or assistant message.", param="messages")

    tool_choice = body.get("tool_choice")
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        system="\n\n".join(text for text in system if text),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(tool_choice),
        max_tokens=_max_tokens(body.get("max_tokens")),
        stream=body.get("stream") is True,
        thinking=_thinking(body.get("thinking"), body.get("output_config")),
        stop=_stop_sequences(body.get("stop_sequences")),
        response_format=_output_format(body),
        parallel_tool_calls=not (
            isinstance(tool_choice, dict) and tool_choice.get("disable_parallel_tool_use") is True
        ),
        dropped=_dropped_fields(body),
    )


def anthropic_count_tokens(body: object) -> dict[str, Any]:
    """The `/v1/messages/count_tokens` answer: an offline estimate (Claude's tokenizer is not public)."""
    return {"input_tokens": estimate_request_tokens(anthropic_to_chat(body))}


# --- system text ---------------------------------------------------------------------------------


def _plain_text(content: object, where: str) -> str:
    """Text of a system prompt: a string or a list of blocks; `cache_control` and non-text blocks dropped."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"`{where}` must be a string or a list of text blocks.", param=where)
    texts: list[str] = []
    for j, block in enumerate(content):
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict):
            text = block.get("text")
            if isinstance(text, str):
                texts.append(text)
        else:
            raise InvalidRequest(f"`{where}[{j}]` must be a text block.", param=f"{where}[{j}]")
    return "\n\n".join(text for text in texts if text)


# --- message content -----------------------------------------------------------------------------


def _parts(content: object, role: Role, where: str) -> tuple[Part, ...]:
    where = f"{where}.content"
    if content is None:
        return ()
    if isinstance(content, str):
        return (TextPart(content),) if content else ()
    if not isinstance(content, list):
        raise InvalidRequest(f"`{where}` must be a string or a list of content blocks.", param=where)
    parts: list[Part] = []
    for j, block in enumerate(content):
        parts.extend(_block(block, role, f"{where}[{j}]"))
    return tuple(parts)


def _block(block: object, role: Role, where: str) -> list[Part]:
    if isinstance(block, str):
        return [TextPart(block)] if block else []
    if not isinstance(block, dict):
        raise InvalidRequest(f"`{where}` must be a content block object.", param=where)
    kind = block.get("type")
    reader = _BLOCK_READERS.get(kind) if isinstance(kind, str) else None
    if reader is not None:
        return reader(block, role, where)
    # Unknown or newer block types (search_result, server tool blocks, ...): keep any text, drop the rest.
    text = block.get("text")
    return [TextPart(text)] if isinstance(text, str) and text else []


def _text_block(block: dict[str, Any], role: Role, where: str) -> list[Part]:
    text = _optional_str(block, "text", where)
    return [TextPart(text)] if text else []


def _image_block(block: dict[str, Any], role: Role, where: str) -> list[Part]:
    return [_image(block.get("source"), f"{where}.source")]


def _tool_use_block(block: dict[str, Any], role: Role, where: str) -> list[Part]:
    return [
        ToolCallPart(
            id=_required_str(block, "id", where),
            name=_required_str(block, "name", where),
            arguments=_tool_arguments(block.get("input"), f"{where}.input"),
        )
    ]


def _tool_result_block(block: dict[str, Any], role: Role, where: str) -> list[Part]:
    """A tool result, followed by any images it returned.

    Kiro's toolResults carry text only, so images inside a result (Claude Code's Read tool on a
    screenshot) travel as images of the same user message, and the result text says so.
    """
    tool_use_id = _required_str(block, "tool_use_id", where)
    texts, images = _result_content(block.get("content"), f"{where}.content")
    if images:
        texts.append(f"[{len(images)} image(s) returned by this tool are attached to this message.]")
    result = ToolResultPart(tool_call_id=tool_use_id, content="\n".join(texts), is_error=block.get("is_error") is True)
    return [result, *images]


def _thinking_block(block: dict[str, Any], role: Role, where: str) -> list[Part]:
    text = _optional_str(block, "thinking", where)
    signature = block.get("signature")
    # Thinking only means something as the assistant's own earlier reasoning.
    if role != "assistant" or not text:
        return []
    return [ThinkingPart(text=text, signature=signature if isinstance(signature, str) else "")]


def _skip_block(block: dict[str, Any], role: Role, where: str) -> list[Part]:
    # redacted_thinking is encrypted for Anthropic's servers; Kiro cannot use it.
    return []


def _document_block(block: dict[str, Any], role: Role, where: str) -> list[Part]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"`{where}.source` must be an object.", param=f"{where}.source")
    kind = source.get("type")
    if kind == "text":
        body = _optional_str(source, "data", f"{where}.source")
    elif kind == "content":
        texts, _ = _result_content(source.get("content"), f"{where}.source.content")
        body = "\n".join(texts)
    else:
        raise InvalidRequest(
            "PDF and other binary documents are not supported: Kiro accepts only text and images. "
            "Extract the document's text and send it as a text block.",
            param=f"{where}.source",
        )
    title = block.get("title")
    text = f"{title}\n\n{body}" if isinstance(title, str) and title and body else body
    return [TextPart(text)] if text else []


_BLOCK_READERS: dict[str, _BlockReader] = {
    "text": _text_block,
    "image": _image_block,
    "tool_use": _tool_use_block,
    "tool_result": _tool_result_block,
    "thinking": _thinking_block,
    "redacted_thinking": _skip_block,
    "document": _document_block,
}


def _result_content(content: object, where: str) -> tuple[list[str], list[ImagePart]]:
    """Texts and images of a tool_result's (or a content document's) `content`: a string or a block list."""
    if content is None:
        return [], []
    if isinstance(content, str):
        return ([content] if content else []), []
    if not isinstance(content, list):
        raise InvalidRequest(f"`{where}` must be a string or a list of content blocks.", param=where)
    texts: list[str] = []
    images: list[ImagePart] = []
    for j, item in enumerate(content):
        for part in _block(item, "user", f"{where}[{j}]"):
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ImagePart):
                images.append(part)
    return texts, images


def _image(source: object, where: str) -> ImagePart:
    if not isinstance(source, dict):
        raise InvalidRequest(f"`{where}` must be an image source object.", param=where)
    kind = source.get("type")
    if kind == "base64":
        data = _required_str(source, "data", where)
        media_type = _optional_str(source, "media_type", where)
        if data.startswith("data:"):
            return _data_url(data, where)
        return ImagePart(media_type=media_type, data=data)
    if kind == "url":
        url = _required_str(source, "url", where)
        return _data_url(url, where) if url.startswith("data:") else ImagePart(url=url)
    if kind == "file":
        raise UnsupportedImage(
            "Images referenced by file_id (Files API) are not supported; send the image as base64 instead.",
            param=where,
        )
    raise InvalidRequest(f'`{where}.type` must be "base64" or "url".', param=f"{where}.type")


def _data_url(url: str, where: str) -> ImagePart:
    # Some clients put a data: URL where Anthropic expects plain base64 or an http(s) URL.
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64") or not data:
        raise UnsupportedImage("Only base64 data: URLs are supported for images.", param=where)
    return ImagePart(media_type=head[len("data:") : -len(";base64")], data=data)


def _tool_arguments(value: object, where: str) -> str:
    """The tool input as compact JSON text of an object (what `ToolCallPart.arguments` promises)."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        # Tolerated: some clients replay the streamed partial_json string instead of the parsed object.
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{where}` must be a JSON object.", param=where)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- tools, limits, thinking ---------------------------------------------------------------------


def _tools(raw: object) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest("`tools` must be a list of tool definitions.", param="tools")
    tools: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"`{where}` must be a tool definition object.", param=where)
        if tool.get("type") not in (None, "custom"):
            # Server tools (web_search_*, bash_*, text_editor_*, code_execution_*) run on Anthropic's
            # side; Kiro cannot execute them, so they are dropped rather than refused.
            continue
        schema = tool.get("input_schema")
        description = tool.get("description")
        tools.append(
            ToolSpec(
                name=_required_str(tool, "name", where),
                description=description if isinstance(description, str) else "",
                parameters=schema if isinstance(schema, dict) else dict(_EMPTY_SCHEMA),
            )
        )
    return tuple(tools)


def _tool_choice(raw: object) -> ToolChoice | None:
    kind = raw.get("type") if isinstance(raw, dict) else raw
    if isinstance(kind, str) and kind in _TOOL_CHOICE_MODES:
        return ToolChoice(mode=_TOOL_CHOICE_MODES[kind])
    if kind == "tool" and isinstance(raw, dict):
        return ToolChoice(mode="tool", name=_required_str(raw, "name", "tool_choice"))
    # Missing or unknown: the model decides, as with no tool_choice at all.
    return None


def _stop_sequences(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise InvalidRequest("`stop_sequences` must be a list of strings.", param="stop_sequences")
    return tuple(s for s in raw if s)


def _output_format(body: dict[str, Any]) -> ResponseFormat | None:
    """Structured outputs: `output_config.format` (current) or the beta's top-level `output_format`."""
    config = body.get("output_config")
    where, raw = "output_format", body.get("output_format")
    if isinstance(config, dict) and config.get("format") is not None:
        where, raw = "output_config.format", config["format"]
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") != "json_schema" or not isinstance(raw.get("schema"), dict):
        raise InvalidRequest(f'`{where}` must look like {{"type": "json_schema", "schema": {{...}}}}.', param=where)
    return ResponseFormat(raw["schema"], name="json_schema")


def _dropped_fields(body: dict[str, Any]) -> tuple[str, ...]:
    """Top-level fields sent with a value that Kiro cannot honour (temperature, top_k, ...), sorted."""
    dropped = {k for k, v in body.items() if k not in _READ_FIELDS and v is not None}
    config = body.get("output_config")
    if isinstance(config, dict):
        dropped.update(f"output_config.{k}" for k in config if k not in ("effort", "format"))
    return tuple(sorted(dropped))


def _max_tokens(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidRequest("`max_tokens` must be a positive integer.", param="max_tokens")
    return raw


def _thinking(raw: object, output_config: object) -> Thinking | None:
    kind = raw.get("type") if isinstance(raw, dict) else None
    effort_name = output_config.get("effort") if isinstance(output_config, dict) else None
    effort = _EFFORTS.get(effort_name) if isinstance(effort_name, str) else None
    if kind == "enabled" and isinstance(raw, dict):
        budget = raw.get("budget_tokens")
        valid_budget = isinstance(budget, int) and not isinstance(budget, bool) and budget > 0
        return Thinking(budget_tokens=budget if valid_budget else None, effort=effort)
    if kind == "adaptive":
        return Thinking(effort=effort or _DEFAULT_ADAPTIVE_EFFORT)
    return None


# --- field readers -------------------------------------------------------------------------------


def _required_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"`{where}.{key}` must be a non-empty string.", param=f"{where}.{key}")
    return value


def _optional_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"`{where}.{key}` must be a string.", param=f"{where}.{key}")
    return value

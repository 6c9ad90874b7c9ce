"""OpenAI Chat Completions request body -> neutral `ChatRequest`, validating as it goes.

Anything we cannot translate raises `InvalidRequest` with a sentence a person can act on and the JSON
path of the offending field in `param` (e.g. `messages[2].content`); no other exception escapes.
"""

from __future__ import annotations

from typing import Any

from .data_url import image_from_data_url
from .errors import InvalidRequest, UnsupportedImage
from .model import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from .openai_options import (
    check_meaningful,
    check_stream_options,
    dropped_fields,
    max_tokens_of,
    non_empty_str,
    optional_bool,
    parallel_calls_of,
    response_format_of,
    show,
    stop_of,
    thinking_of,
    tools_and_choice,
)

_SYSTEM_ROLES = frozenset({"system", "developer"})
_KNOWN_ROLES = _SYSTEM_ROLES | {"user", "assistant", "tool", "function"}


def openai_to_chat(body: object) -> ChatRequest:
    """Translate a `/v1/chat/completions` body; fields Kiro cannot honour (temperature, ...) land in `dropped`."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("`model` must be a non-empty string naming the model to use.", param="model")
    check_meaningful(body)
    stream = optional_bool(body.get("stream"), "stream")
    check_stream_options(body.get("stream_options"))
    system, messages = _messages(body.get("messages"))
    tools, tool_choice = tools_and_choice(body)
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=max_tokens_of(body),
        stream=stream,
        thinking=thinking_of(body.get("reasoning_effort")),
        stop=stop_of(body),
        response_format=response_format_of(body),
        parallel_tool_calls=parallel_calls_of(body),
        dropped=dropped_fields(body),
    )


def openai_include_usage(body: object) -> bool:
    """Whether a streaming client asked for the final usage chunk (`stream_options.include_usage`)."""
    if not isinstance(body, dict):
        return False
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# --- messages --------------------------------------------------------------------------------


def _messages(raw: object) -> tuple[str, tuple[Message, ...]]:
    """System text and the conversation.

    System and developer messages are gathered into one system prompt wherever they appear, in order:
    Kiro has no system role at all (the prompt rides on the first user turn), so a late one's position
    cannot be kept; it still reaches the model instead of being dropped.
    """
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("`messages` must be a non-empty list of message objects.", param="messages")
    system: list[str] = []
    messages: list[Message] = []
    # Legacy `function_call`s carry no id; remember the id we invented so the result can refer to it.
    legacy_ids: dict[str, str] = {}
    for index, message in enumerate(raw):
        path = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"`{path}` must be an object with a `role`.", param=path)
        role = message.get("role")
        if not isinstance(role, str) or role not in _KNOWN_ROLES:
            raise InvalidRequest(
                f"`{path}.role` must be one of system, developer, user, assistant or tool; got {show(role)}.",
                param=f"{path}.role",
            )
        if role in _SYSTEM_ROLES:
            text = _text_content(message.get("content"), f"{path}.content")
            if text:
                system.append(text)
        elif role == "user":
            messages.append(Message("user", _user_parts(message.get("content"), f"{path}.content")))
        elif role == "assistant":
            messages.append(Message("assistant", _assistant_parts(message, path, index, legacy_ids)))
        else:
            _append_tool_result(messages, _tool_result(message, role, path, legacy_ids))
    if not messages:
        raise InvalidRequest(
            "`messages` must contain at least one user, assistant or tool message, not only system text.",
            param="messages",
        )
    return "\n\n".join(system), tuple(messages)


def _append_tool_result(messages: list[Message], result: ToolResultPart) -> None:
    """Consecutive tool results answer one assistant turn, so they share one user message."""
    last = messages[-1] if messages else None
    if last is not None and last.parts and all(isinstance(p, ToolResultPart) for p in last.parts):
        messages[-1] = Message("user", (*last.parts, result))
    else:
        messages.append(Message("user", (result,)))


def _user_parts(content: object, path: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise InvalidRequest(f"`{path}` must be a string or a list of content parts.", param=path)
    parts: list[Part] = []
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        kind = _part_type(part, part_path)
        if kind == "text":
            parts.append(TextPart(_part_text(part, "text", part_path)))
        elif kind == "image_url":
            parts.append(_image(part, part_path))
        elif kind in ("input_audio", "file"):
            raise InvalidRequest(
                f"`{part_path}` is a {kind} part; ki2api can only send text and images to Kiro.",
                param=part_path,
            )
        else:
            raise InvalidRequest(f"`{part_path}.type` {show(kind)} is not a supported content part.", param=part_path)
    return tuple(parts)


def _assistant_parts(message: dict[str, Any], path: str, index: int, legacy_ids: dict[str, str]) -> tuple[Part, ...]:
    parts: list[Part] = []
    reasoning = message.get("reasoning_content")
    if reasoning is not None:
        if not isinstance(reasoning, str):
            raise InvalidRequest(f"`{path}.reasoning_content` must be a string.", param=f"{path}.reasoning_content")
        if reasoning:
            parts.append(ThinkingPart(reasoning))
    content = message.get("content")
    if isinstance(content, str):
        parts.append(TextPart(content))
    elif isinstance(content, list):
        for part_index, part in enumerate(content):
            part_path = f"{path}.content[{part_index}]"
            kind = _part_type(part, part_path)
            if kind not in ("text", "refusal"):
                raise InvalidRequest(f"`{part_path}` must be a text or refusal part.", param=part_path)
            parts.append(TextPart(_part_text(part, kind, part_path)))
    elif content is not None:
        raise InvalidRequest(f"`{path}.content` must be a string, a list of parts or null.", param=f"{path}.content")
    refusal = message.get("refusal")
    if refusal is not None:
        if not isinstance(refusal, str):
            raise InvalidRequest(f"`{path}.refusal` must be a string.", param=f"{path}.refusal")
        parts.append(TextPart(refusal))
    parts.extend(_tool_calls(message.get("tool_calls"), f"{path}.tool_calls"))
    legacy = message.get("function_call")
    if legacy is not None:
        call = _function_call(legacy, f"{path}.function_call", f"call_legacy_{index}")
        legacy_ids[call.name] = call.id
        parts.append(call)
    return tuple(parts)


def _tool_calls(raw: object, path: str) -> list[ToolCallPart]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest(f"`{path}` must be a list of tool calls.", param=path)
    calls: list[ToolCallPart] = []
    for index, call in enumerate(raw):
        call_path = f"{path}[{index}]"
        if not isinstance(call, dict):
            raise InvalidRequest(f"`{call_path}` must be an object.", param=call_path)
        kind = call.get("type", "function")
        if kind != "function":
            raise InvalidRequest(f'`{call_path}.type` must be "function"; got {show(kind)}.', param=f"{call_path}.type")
        call_id = non_empty_str(call.get("id"), f"{call_path}.id")
        calls.append(_function_call(call.get("function"), f"{call_path}.function", call_id))
    return calls


def _function_call(raw: object, path: str, call_id: str) -> ToolCallPart:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"`{path}` must be an object with `name` and `arguments`.", param=path)
    name = non_empty_str(raw.get("name"), f"{path}.name")
    arguments = raw.get("arguments", "")
    if not isinstance(arguments, str):
        raise InvalidRequest(
            f"`{path}.arguments` must be a string holding JSON, as the model produced it.", param=f"{path}.arguments"
        )
    return ToolCallPart(id=call_id, name=name, arguments=arguments)


def _tool_result(message: dict[str, Any], role: str, path: str, legacy_ids: dict[str, str]) -> ToolResultPart:
    content = _text_content(message.get("content"), f"{path}.content")
    if role == "tool":
        return ToolResultPart(non_empty_str(message.get("tool_call_id"), f"{path}.tool_call_id"), content)
    # Legacy `function` role: the result names the function, not a call id.
    name = non_empty_str(message.get("name"), f"{path}.name")
    return ToolResultPart(legacy_ids.pop(name, f"call_legacy_{name}"), content)


# --- content parts ---------------------------------------------------------------------------


def _text_content(content: object, path: str) -> str:
    """A string, or a list of text parts joined (system, developer and tool messages)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"`{path}` must be a string or a list of text parts.", param=path)
    texts: list[str] = []
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        if _part_type(part, part_path) != "text":
            raise InvalidRequest(f"`{part_path}` must be a text part; only text is allowed here.", param=part_path)
        texts.append(_part_text(part, "text", part_path))
    return "".join(texts)


def _part_type(part: object, path: str) -> str:
    if not isinstance(part, dict):
        raise InvalidRequest(f"`{path}` must be a content part object with a `type`.", param=path)
    kind = part.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f'`{path}.type` must be a string such as "text".', param=f"{path}.type")
    return kind


def _part_text(part: dict[str, Any], key: str, path: str) -> str:
    text = part.get(key)
    if not isinstance(text, str):
        raise InvalidRequest(f"`{path}.{key}` must be a string.", param=f"{path}.{key}")
    return text


def _image(part: dict[str, Any], path: str) -> ImagePart:
    image = part.get("image_url")
    # Some older clients send the URL directly instead of `{"url": ...}`.
    url = image.get("url") if isinstance(image, dict) else image
    url_path = f"{path}.image_url.url" if isinstance(image, dict) else f"{path}.image_url"
    if not isinstance(url, str):
        raise InvalidRequest(f"`{url_path}` must be a string URL.", param=url_path)
    lowered = url[:8].lower()
    if lowered.startswith(("http://", "https://")):
        return ImagePart(url=url)
    if not lowered.startswith("data:"):
        raise UnsupportedImage(f"`{url_path}` must be a data: URL or an http(s) URL.", param=url_path)
    try:
        return image_from_data_url(url)
    except ValueError as reason:
        raise UnsupportedImage(f"`{url_path}` {reason}.", param=url_path) from None

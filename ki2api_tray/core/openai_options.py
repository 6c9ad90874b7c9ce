"""OpenAI Chat Completions: the request's tools and top-level options (everything but `messages`).

Options Kiro has no knob for are either emulated by ki2api (stop, max tokens, response_format, tool
choice, parallel tool calls), refused with a 400 when leaving them out would change what the answer means
(`n` > 1, `logprobs`, audio output), or listed in `dropped_fields` so the request log can show them.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest
from .model import Effort, ResponseFormat, Thinking, ToolChoice, ToolSpec

# Fields ki2api reads (or checks) itself; any other top-level field is dropped and listed.
_READ_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "n", "tools", "functions", "tool_choice",
        "function_call", "max_tokens", "max_completion_tokens", "reasoning_effort", "stop",
        "response_format", "parallel_tool_calls",
    }
)  # fmt: skip
MAX_STOP_SEQUENCES = 4  # OpenAI's own limit
OPEN_OBJECT: dict[str, Any] = {"type": "object"}

# Kiro speaks Claude's effort scale: OpenAI's extra rungs fold onto the nearest one it has.
_EFFORTS: dict[str, Effort | None] = {
    "none": None,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "max",
}

_TOOL_CHOICE_MODES: dict[str, ToolChoice] = {
    "auto": ToolChoice("auto"),
    "none": ToolChoice("none"),
    "required": ToolChoice("any"),
}


def tools_of(raw: object) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest("`tools` must be a list of tool definitions.", param="tools")
    specs: list[ToolSpec] = []
    for index, tool in enumerate(raw):
        tool_path = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"`{tool_path}` must be an object.", param=tool_path)
        kind = tool.get("type", "function")
        if kind != "function":
            raise InvalidRequest(
                f"`{tool_path}.type` {show(kind)} is not supported; only function tools can be sent to Kiro.",
                param=f"{tool_path}.type",
            )
        specs.append(tool_spec(tool.get("function"), f"{tool_path}.function"))
    return tuple(specs)


def functions_of(raw: object) -> tuple[ToolSpec, ...]:
    """The pre-`tools` `functions` field: a list of bare function definitions."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest("`functions` must be a list of function definitions.", param="functions")
    return tuple(tool_spec(function, f"functions[{index}]") for index, function in enumerate(raw))


def tool_spec(raw: object, path: str) -> ToolSpec:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"`{path}` must be an object with a `name`.", param=path)
    name = non_empty_str(raw.get("name"), f"{path}.name")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"`{path}.description` must be a string.", param=f"{path}.description")
    parameters = raw.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(f"`{path}.parameters` must be a JSON schema object.", param=f"{path}.parameters")
    return ToolSpec(
        name=name, description=description or "", parameters=parameters or {"type": "object", "properties": {}}
    )


def tool_choice_of(body: dict[str, Any], tools: tuple[ToolSpec, ...]) -> ToolChoice | None:
    if body.get("tool_choice") is not None:
        param, raw = "tool_choice", body["tool_choice"]
    elif body.get("function_call") is not None:
        param, raw = "function_call", body["function_call"]
    else:
        return None
    if isinstance(raw, str):
        choice = _TOOL_CHOICE_MODES.get(raw)
        if choice is None or (param == "function_call" and raw == "required"):
            raise InvalidRequest(f'`{param}` must be "auto", "none", "required" or a function.', param=param)
        return choice
    if not isinstance(raw, dict):
        raise InvalidRequest(f"`{param}` must be a string or an object naming a function.", param=param)
    if param == "tool_choice" and raw.get("type") == "allowed_tools":
        return _allowed_tools(raw.get("allowed_tools"), tools)
    # `tool_choice` wraps the name in {"type": "function", "function": {...}}; `function_call` does not.
    if param == "tool_choice":
        if raw.get("type") != "function" or not isinstance(raw.get("function"), dict):
            raise InvalidRequest(
                '`tool_choice` must look like {"type": "function", "function": {"name": ...}}.', param=param
            )
        raw, param = raw["function"], "tool_choice.function"
    name = non_empty_str(raw.get("name"), f"{param}.name")
    if name not in {tool.name for tool in tools}:
        raise InvalidRequest(
            f"`{param}.name` names {name!r}, which is not among the tools sent.", param=f"{param}.name"
        )
    return ToolChoice("tool", name)


def _allowed_tools(raw: object, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    """`{"type": "allowed_tools", "allowed_tools": {"mode": "auto" | "required", "tools": [...]}}`."""
    param = "tool_choice.allowed_tools"
    valid = isinstance(raw, dict) and raw.get("mode") in ("auto", "required") and isinstance(raw.get("tools"), list)
    if not valid or not isinstance(raw, dict):
        raise InvalidRequest(
            f'`{param}` must be an object with `mode` ("auto" or "required") and a list of `tools`.', param=param
        )
    sent = {tool.name for tool in tools}
    names: list[str] = []
    for index, tool in enumerate(raw["tools"]):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or name not in sent:
            where = f"{param}.tools[{index}]"
            raise InvalidRequest(f"`{where}` must name a function among the tools sent.", param=where)
        names.append(name)
    return ToolChoice("any" if raw["mode"] == "required" else "auto", allowed=tuple(names))


def max_tokens_of(body: dict[str, Any]) -> int | None:
    # Newer SDKs send `max_completion_tokens`; it wins when a client sends both.
    for param in ("max_completion_tokens", "max_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"`{param}` must be a positive integer; got {show(value)}.", param=param)
        return value
    return None


def thinking_of(raw: object, param: str = "reasoning_effort") -> Thinking | None:
    """OpenAI's effort names (chat `reasoning_effort`, Responses `reasoning.effort`) as Kiro thinking."""
    if raw is None:
        return None
    if not isinstance(raw, str) or raw not in _EFFORTS:
        raise InvalidRequest(f"`{param}` must be one of {', '.join(_EFFORTS)}; got {show(raw)}.", param=param)
    effort = _EFFORTS[raw]
    return Thinking(effort=effort) if effort is not None else None


def check_n(raw: object) -> None:
    if raw is None:
        return
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidRequest("`n` must be a positive integer.", param="n")
    if raw > 1:
        raise InvalidRequest("`n` greater than 1 is not supported: Kiro returns one choice per request.", param="n")


def check_stream_options(raw: object) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise InvalidRequest("`stream_options` must be an object.", param="stream_options")
    optional_bool(raw.get("include_usage"), "stream_options.include_usage")


# --- scalars ---------------------------------------------------------------------------------


def optional_bool(raw: object, param: str) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise InvalidRequest(f"`{param}` must be true or false.", param=param)
    return raw


def non_empty_str(raw: object, param: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise InvalidRequest(f"`{param}` must be a non-empty string.", param=param)
    return raw


def show(value: object) -> str:
    """A bad value, shortened for an error message: a huge body must not end up whole in a reply or a log."""
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "a list"
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:37]) + "..."
    return repr(value)


def tools_and_choice(body: dict[str, Any]) -> tuple[tuple[ToolSpec, ...], ToolChoice | None]:
    tools = tools_of(body.get("tools")) + functions_of(body.get("functions"))
    return tools, tool_choice_of(body, tools)


def stop_of(body: dict[str, Any]) -> tuple[str, ...]:
    """`stop`: null, one string, or a list of up to four strings; empty strings mean nothing."""
    raw = body.get("stop")
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise InvalidRequest("`stop` must be a string or a list of strings.", param="stop")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"`stop` takes at most {MAX_STOP_SEQUENCES} strings; got {len(stops)}.", param="stop")
    return tuple(s for s in stops if s)


def response_format_of(body: dict[str, Any]) -> ResponseFormat | None:
    raw = body.get("response_format")
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        # Some clients (instructor's older JSON-schema mode) put a schema next to json_object; honour it.
        schema = raw.get("schema") if isinstance(raw, dict) else None
        return ResponseFormat(schema if isinstance(schema, dict) and schema else dict(OPEN_OBJECT), name="json_object")
    if kind != "json_schema" or not isinstance(raw, dict):
        raise InvalidRequest(
            '`response_format.type` must be "text", "json_object" or "json_schema".', param="response_format.type"
        )
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidRequest(
            "`response_format.json_schema` must be an object with `name` and `schema`.",
            param="response_format.json_schema",
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidRequest(
            "`response_format.json_schema.schema` must be a JSON schema object.",
            param="response_format.json_schema.schema",
        )
    name = spec.get("name")
    description = spec.get("description")
    return ResponseFormat(
        schema if schema else dict(OPEN_OBJECT),
        name=name if isinstance(name, str) else "",
        description=description if isinstance(description, str) else "",
    )


def parallel_calls_of(body: dict[str, Any]) -> bool:
    return body.get("parallel_tool_calls") is not False


def check_meaningful(body: dict[str, Any]) -> None:
    """A 400 for fields whose absence would change what the answer means to the client."""
    check_n(body.get("n"))
    if body.get("logprobs") is True or body.get("top_logprobs") not in (None, 0):
        raise InvalidRequest(
            "`logprobs` is not supported: Kiro does not return token log probabilities.", param="logprobs"
        )
    modalities = body.get("modalities")
    if body.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise InvalidRequest(
            'Audio output is not supported: Kiro answers in text only. Leave out `audio` and the "audio" modality.',
            param="modalities" if body.get("audio") is None else "audio",
        )


def dropped_fields(body: dict[str, Any]) -> tuple[str, ...]:
    """Top-level fields sent with a value that ki2api cannot pass on (temperature, seed, ...), sorted."""
    return tuple(sorted(k for k, v in body.items() if k not in _READ_FIELDS and v is not None and v is not False))

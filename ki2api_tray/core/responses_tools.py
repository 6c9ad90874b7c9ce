"""Responses API tools -> neutral `ToolSpec`s, and how to name each call again on the way back.

Kiro only knows flat function tools, so namespaces are flattened (`namespace__name`) and custom (free-form)
tools become a function taking one string; `ToolOrigin`s remember the client's names. Built-in tools are
listed as dropped, except web search, which ki2api runs itself through Kiro (core/web_search.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .errors import InvalidRequest
from .model import ToolChoice, ToolSpec
from .openai_options import non_empty_str

_WEB_SEARCH_TOOLS = frozenset(
    {"web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"}
)
# Input items that only describe what a hosted tool did earlier; Kiro has no counterpart, so they are skipped.
CUSTOM_INPUT = "input"
"""The one string parameter a custom (free-form) tool gets when it is offered to Kiro as a function."""


@dataclass(frozen=True)
class ToolOrigin:
    """How the client named a tool that Kiro sees under a flat name."""

    name: str
    namespace: str | None = None
    kind: Literal["function", "custom"] = "function"


def flat_name(namespace: str, name: str) -> str:
    """The name Kiro sees for a namespaced function; no separator when the namespace already ends in one."""
    return f"{namespace}{name}" if namespace.endswith(("_", "-", ".", "/")) else f"{namespace}__{name}"


_CALLABLE: dict[str, Literal["function", "custom"]] = {"function": "function", "custom": "custom"}


def responses_tools(raw: object) -> tuple[tuple[ToolSpec, ...], dict[str, ToolOrigin], bool, tuple[str, ...]]:
    if raw is None:
        return (), {}, False, ()
    if not isinstance(raw, list):
        raise InvalidRequest("`tools` must be a list of tool definitions.", param="tools")
    specs: list[ToolSpec] = []
    origins: dict[str, ToolOrigin] = {}
    web_search = False
    dropped: list[str] = []
    for index, tool in enumerate(raw):
        path = f"tools[{index}]"
        kind = _type_of(tool, path)
        assert isinstance(tool, dict)
        callable_kind = _CALLABLE.get(kind)
        if callable_kind is not None:
            spec = _tool_spec(tool, path, callable_kind)
            _add(specs, origins, spec, ToolOrigin(spec.name, None, callable_kind), path)
        elif kind == "namespace":
            namespace = non_empty_str(tool.get("name"), f"{path}.name")
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise InvalidRequest(f"`{path}.tools` must be a list of function tools.", param=f"{path}.tools")
            for inner_index, member in enumerate(inner):
                member_path = f"{path}.tools[{inner_index}]"
                member_kind = _CALLABLE.get(_type_of(member, member_path))
                if member_kind is None:
                    raise InvalidRequest(
                        f"`{member_path}.type` must be function or custom inside a namespace.", param=member_path
                    )
                assert isinstance(member, dict)
                spec = _tool_spec(member, member_path, member_kind)
                flat = flat_name(namespace, spec.name)
                origin = ToolOrigin(spec.name, namespace, member_kind)
                _add(specs, origins, replace(spec, name=flat), origin, member_path)
        elif kind in _WEB_SEARCH_TOOLS:
            web_search = True
        else:
            dropped.append(kind)
    return tuple(specs), origins, web_search, tuple(dropped)


def _add(specs: list[ToolSpec], origins: dict[str, ToolOrigin], spec: ToolSpec, origin: ToolOrigin, path: str) -> None:
    if spec.name in origins:
        raise InvalidRequest(f"`{path}` repeats the tool name {spec.name!r}; tool names must be unique.", param=path)
    specs.append(spec)
    origins[spec.name] = origin


def _tool_spec(tool: dict[str, Any], path: str, kind: str) -> ToolSpec:
    name = non_empty_str(tool.get("name"), f"{path}.name")
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"`{path}.description` must be a string.", param=f"{path}.description")
    if kind == "custom":
        return ToolSpec(name=name, description=description or "", parameters=_custom_parameters(tool.get("format")))
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(f"`{path}.parameters` must be a JSON schema object.", param=f"{path}.parameters")
    return ToolSpec(name=name, description=description or "", parameters=parameters or _EMPTY_SCHEMA)


_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def _custom_parameters(fmt: object) -> dict[str, Any]:
    """A custom tool takes free text; the grammar, when given, tells the model what that text must look like."""
    hint = "The tool's whole input, as plain text."
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        hint += f" It must match this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
    return {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": hint}},
        "required": [CUSTOM_INPUT],
    }


def responses_tool_choice(
    raw: object, specs: tuple[ToolSpec, ...], origins: Mapping[str, ToolOrigin]
) -> ToolChoice | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        modes = {"auto": ToolChoice("auto"), "none": ToolChoice("none"), "required": ToolChoice("any")}
        if raw not in modes:
            raise InvalidRequest('`tool_choice` must be "auto", "none", "required" or a tool.', param="tool_choice")
        return modes[raw]
    if not isinstance(raw, dict):
        raise InvalidRequest("`tool_choice` must be a string or an object naming a tool.", param="tool_choice")
    kind = raw.get("type")
    if kind in ("function", "custom"):
        name = non_empty_str(raw.get("name"), "tool_choice.name")
        for flat, origin in origins.items():
            if flat == name or (origin.name == name and origin.namespace is None):
                return ToolChoice("tool", flat)
        raise InvalidRequest(
            f"`tool_choice.name` names {name!r}, which is not among the tools sent.", param="tool_choice.name"
        )
    if kind == "allowed_tools":
        return ToolChoice("any") if raw.get("mode") == "required" else ToolChoice("auto")
    # A hosted tool (web_search, file_search, mcp, ...) named as the choice: let the model decide.
    return ToolChoice("auto") if specs else None


def _type_of(value: object, path: str) -> str:
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{path}` must be an object with a `type`.", param=path)
    kind = value.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidRequest(f"`{path}.type` must be a string.", param=f"{path}.type")
    return kind


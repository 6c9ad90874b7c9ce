"""Tool definitions as Kiro accepts them (kiro-protocol.md §3.5): names, descriptions and schemas.

Kiro rejects names over 64 characters, over-long or empty descriptions and some JSON-schema keywords
with a bare "Improperly formed request", so each is repaired here before the request is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from .model import ToolSpec

MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 10_000  # JW, K2A and KRS all use 10,000 (AIC 9,216); JW/SAM report 400s above it
_HASH_CHARS = 12  # AIC's suffix length: 48 bits, so distinct long names never collide in practice
TRUNCATION_NOTE = "\n\n[Description truncated by ki2api: Kiro accepts at most 10,000 characters.]"
# Anthropic's server-side web search cannot run on Kiro; K2A and AIC drop it the same way.
SERVER_TOOL_NAMES = frozenset({"web_search", "websearch"})


def kiro_tool_name(name: str) -> str:
    """The name sent to Kiro: unchanged if short enough, else a prefix plus a hash of the full name.

    Deterministic, so the same long name maps to the same short one in every request of a conversation.
    """
    if len(name) <= MAX_NAME_CHARS:
        return name
    # surrogatepass: a client's lone "\ud83d" escape survives JSON parsing but is not UTF-8; the hash only
    # needs bytes that are distinct and stable, and valid names hash exactly as plain UTF-8.
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{name[: MAX_NAME_CHARS - _HASH_CHARS - 1]}_{digest}"


def is_server_tool(name: str) -> bool:
    return name.lower() in SERVER_TOOL_NAMES


def _clean_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return clean_schema(value)
    if isinstance(value, list):
        return [_clean_value(item) for item in value]
    return value


def clean_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a JSON schema without `additionalProperties` and empty `required: []`, at every depth.

    JW reports both triggering 400s and strips them by key wherever they appear; we do the same, so a
    property that happens to be *named* `additionalProperties` is dropped too: we cannot tell whether Kiro
    checks the keyword or just the key, and a rejected request is worse than one missing parameter.
    """
    return {
        key: _clean_value(value)
        for key, value in schema.items()
        if key != "additionalProperties" and not (key == "required" and value == [])
    }


def _input_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    schema = clean_schema(parameters)
    # Clients send `{}` for parameterless tools; Kiro's tool config wants an object schema.
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return schema


def _description(text: str, sent_name: str) -> str:
    if not text.strip():
        return f"Tool: {sent_name}"  # JW's substitute; Kiro rejects an empty description
    if len(text) <= MAX_DESCRIPTION_CHARS:
        return text
    return text[: MAX_DESCRIPTION_CHARS - len(TRUNCATION_NOTE)] + TRUNCATION_NOTE


def tool_specification(name: str, description: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    sent = kiro_tool_name(name)
    return {
        "toolSpecification": {
            "name": sent,
            "description": _description(description, sent),
            "inputSchema": {"json": _input_schema(parameters)},
        }
    }


def tool_specifications(tools: Iterable[ToolSpec], used_in_history: Iterable[str]) -> list[dict[str, Any]]:
    """Kiro tool specs for the request's tools, plus stubs for tools history used but the request lacks.

    Kiro matches tool names case-insensitively (KRS), so duplicates are dropped case-insensitively
    (first wins; `TOOL_DUPLICATE`), and a tool use in history needs a spec of that name or Kiro rejects
    the request; KRS's answer, a placeholder spec, keeps the tool use structured.
    """
    specs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for tool in tools:
        key = kiro_tool_name(tool.name).lower()
        if is_server_tool(tool.name) or key in seen:
            continue
        seen.add(key)
        specs.append(tool_specification(tool.name, tool.description, tool.parameters))
    for name in used_in_history:
        key = kiro_tool_name(name).lower()
        if key in seen:
            continue
        seen.add(key)
        stub = f"Tool used earlier in this conversation: {name}"
        specs.append(tool_specification(name, stub, {}))
    return specs


def shortened_names(names: Iterable[str]) -> dict[str, str]:
    """Sent name -> original name, for the names that had to be shortened."""
    return {kiro_tool_name(n): n for n in names if kiro_tool_name(n) != n}

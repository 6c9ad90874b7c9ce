"""How a request's answer is obtained from Kiro, which has no tool_choice and no structured-output field.

Structured output is emulated the way Anthropic recommends for JSON: a synthetic tool whose input
schema is the requested schema, forced for the turn; its arguments become the answer's text. A forced
tool choice becomes an instruction in the prompt, and a retry with a stronger one (and only the named
tool declared) if Kiro answers in text anyway. `plan_answer` decides all that; `read_answer` reads one
attempt's events back. Validation against the schema is the caller's (it needs a schema library).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .model import (
    ChatRequest,
    Finish,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)

ANSWER_TOOL = "structured_answer"
# A schema whose root is not an object is wrapped: tool inputs must be objects (kiro-protocol.md §3.5).
WRAPPED_KEY = "value"
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?\s*```", re.DOTALL)


@dataclass(frozen=True)
class AnswerTool:
    name: str
    wrapped: bool


@dataclass(frozen=True)
class AnswerPlan:
    """`chat` is what Kiro is asked; `retry` what it is asked if the first answer does not do."""

    chat: ChatRequest
    answer_tool: AnswerTool | None = None
    forced: bool = False

    @property
    def needs_whole_answer(self) -> bool:
        """Whether the first attempt must be held back until it is known to be usable."""
        return self.answer_tool is not None or self.forced

    def retry(self, problem: str = "") -> tuple[ChatRequest, str]:
        """The request and the reminder for the second attempt; `problem` says what was wrong."""
        tool = self.answer_tool
        choice = self.chat.tool_choice
        if tool is not None and choice is not None and choice.mode == "tool" and choice.name == tool.name:
            chat = replace(self.chat, tools=tuple(t for t in self.chat.tools if t.name == tool.name))
            lead = f"Your previous answer was not usable: {problem}. " if problem else ""
            return chat, (
                f"{lead}Do not answer in plain text. Call the tool `{tool.name}` exactly once; its input is "
                "your whole answer and must match the tool's input schema exactly."
            )
        if choice is not None and choice.mode == "tool":
            chat = replace(self.chat, tools=tuple(t for t in self.chat.tools if t.name == choice.name))
            return chat, (
                f"Do not answer in plain text. Your reply must be a call to the tool `{choice.name}` with "
                "arguments that match its input schema."
            )
        lead = f"Your previous answer was not usable: {problem}. " if problem else ""
        return self.chat, (
            f"{lead}Do not answer in plain text. Your reply must call one of the available tools with arguments "
            "that match its input schema."
        )


def plan_answer(chat: ChatRequest) -> AnswerPlan:
    chat = _allowed_only(chat)
    fmt = chat.response_format
    choice = chat.tool_choice
    forced = choice is not None and choice.mode in ("any", "tool")
    if fmt is None:
        return AnswerPlan(chat, forced=forced and bool(chat.tools))
    name = _free_name(ANSWER_TOOL, {t.name.lower() for t in chat.tools})
    wrapped = fmt.schema.get("type") != "object"
    parameters = (
        {"type": "object", "properties": {WRAPPED_KEY: fmt.schema}, "required": [WRAPPED_KEY]}
        if wrapped
        else fmt.schema
    )
    named = fmt.name if fmt.name not in ("json_object", "json_schema") else ""
    about = " ".join(filter(None, [named, fmt.description]))
    description = (
        "Give your final answer by calling this tool: its input is the answer, as JSON matching the input "
        "schema exactly. Do not write the answer as text." + (f" The answer: {about}" if about else "")
    )
    spec = ToolSpec(name=name, description=description, parameters=parameters)
    client_tools = chat.tools if choice is None or choice.mode != "none" else ()
    if choice is not None and choice.mode in ("any", "tool") and client_tools:
        new_choice = choice  # the client forces its own tool this turn: the answer comes later
    elif client_tools:
        new_choice = ToolChoice("any")  # a client tool, or the answer
    else:
        new_choice = ToolChoice("tool", name)
    planned = replace(chat, tools=(*client_tools, spec), tool_choice=new_choice)
    return AnswerPlan(planned, AnswerTool(name, wrapped), forced=True)


@dataclass(frozen=True)
class Reading:
    """One attempt's answer as read back.

    `candidate` is the JSON text offered as the structured answer (None when the model called a client
    tool instead, or said nothing usable); `called_tools` whether the answer holds a real tool call.
    """

    events: tuple[StreamEvent, ...]
    candidate: str | None
    called_tools: bool

    def answered(self, text: str) -> list[StreamEvent]:
        """The events the client gets for a valid structured answer: thinking, the JSON as text, end."""
        kept: list[StreamEvent] = [e for e in self.events if isinstance(e, ThinkingDelta)]
        kept.append(TextDelta(text))
        kept.extend(e for e in self.events if isinstance(e, Usage))
        kept.append(Finish("end_turn"))
        return kept


def read_answer(events: Sequence[StreamEvent], tool: AnswerTool | None) -> Reading:
    calls = [e for e in events if isinstance(e, ToolCall)]
    if tool is None:
        return Reading(tuple(events), None, bool(calls))
    for call in calls:
        if call.name == tool.name:
            return Reading(tuple(events), _unwrapped(call.arguments, tool), False)
    if calls:
        return Reading(tuple(events), None, True)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return Reading(tuple(events), _json_in_text(text), False)


def _unwrapped(arguments: str, tool: AnswerTool) -> str:
    if not tool.wrapped:
        return arguments
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and WRAPPED_KEY in value:
        return json.dumps(value[WRAPPED_KEY], ensure_ascii=False)
    return arguments


def _json_in_text(text: str) -> str | None:
    """The JSON a model wrote as prose despite the tool: fenced, bare, or the outermost braces."""
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    if not body:
        return None
    if body[0] not in "{[":
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end < start:
            return body
        body = body[start : end + 1]
    return body


def _allowed_only(chat: ChatRequest) -> ChatRequest:
    """OpenAI `allowed_tools`: the tools outside the list are not offered to Kiro at all."""
    choice = chat.tool_choice
    if choice is None or not choice.allowed:
        return chat
    allowed = set(choice.allowed)
    return replace(chat, tools=tuple(t for t in chat.tools if t.name in allowed))


def _free_name(base: str, taken: set[str]) -> str:
    name, number = base, 1
    while name.lower() in taken:
        number += 1
        name = f"{base}_{number}"
    return name

"""Conversation shaping for Kiro (kiro-protocol.md §3.4): neutral messages -> alternating turns.

Kiro answers "Improperly formed request" unless history alternates user/assistant starting with a user
turn, the current message is a user turn, and every tool result pairs with the tool use just before it.
This module enforces those rules on plain values; `kiro_request` turns the result into wire JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .model import ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart

EMPTY_RESULT = "(empty result)"  # JW's text for a tool result with no content; Kiro rejects empty text


@dataclass(frozen=True)
class UserTurn:
    texts: tuple[str, ...] = ()
    images: tuple[ImagePart, ...] = ()
    results: tuple[ToolResultPart, ...] = ()


@dataclass(frozen=True)
class AssistantTurn:
    texts: tuple[str, ...] = ()
    thinking: tuple[str, ...] = ()
    calls: tuple[ToolCallPart, ...] = ()


Turn = UserTurn | AssistantTurn


@dataclass(frozen=True)
class Conversation:
    """`history` alternates user, assistant, user, ... and ends with an assistant turn (or is empty);
    `current` is the user turn being answered. Every kept tool call has its result in the next turn."""

    history: tuple[Turn, ...]
    current: UserTurn


def call_as_text(call: ToolCallPart) -> str:
    # Deliberately not the `[Called X with args: ...]` shape: the stream parser treats that as a real call (§6.3).
    return f"(Tool call `{call.name}` with id {call.id or '?'} and input: {call.arguments.strip() or '{}'})"


def result_as_text(result: ToolResultPart) -> str:
    kind = "Error result" if result.is_error else "Result"
    return f"({kind} of tool call {result.tool_call_id or '?'}: {result.content or EMPTY_RESULT})"


def _user_turn(message: Message) -> UserTurn:
    texts: list[str] = []
    images: list[ImagePart] = []
    results: list[ToolResultPart] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                texts.append(part.text)
        elif isinstance(part, ImagePart):
            images.append(part)
        elif isinstance(part, ToolResultPart):
            results.append(part)
        elif isinstance(part, ToolCallPart):
            texts.append(call_as_text(part))
        else:
            texts.append(part.text)  # reasoning sent on the user side is just more text for the model
    return UserTurn(tuple(texts), tuple(images), tuple(results))


def _assistant_turn(message: Message) -> AssistantTurn:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCallPart] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:  # an empty turn merged into a neighbour must not leave a stray newline
                texts.append(part.text)
        elif isinstance(part, ThinkingPart):
            thinking.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(part)
        elif isinstance(part, ToolResultPart):
            texts.append(result_as_text(part))
        else:
            texts.append("(image omitted)")  # Kiro has no images on assistant turns
    return AssistantTurn(tuple(texts), tuple(thinking), tuple(calls))


def _merged_turns(messages: Sequence[Message]) -> list[Turn]:
    turns: list[Turn] = []
    for message in messages:
        last = turns[-1] if turns else None
        if message.role == "user":
            user = _user_turn(message)
            if isinstance(last, UserTurn):
                turns[-1] = UserTurn(last.texts + user.texts, last.images + user.images, last.results + user.results)
            else:
                turns.append(user)
        else:
            said = _assistant_turn(message)
            if isinstance(last, AssistantTurn):
                turns[-1] = AssistantTurn(
                    last.texts + said.texts, last.thinking + said.thinking, last.calls + said.calls
                )
            else:
                turns.append(said)
    return turns


def _flatten_tools(turn: Turn) -> Turn:
    if isinstance(turn, UserTurn):
        texts = tuple(result_as_text(r) for r in turn.results) + turn.texts
        return UserTurn(texts, turn.images, ())
    return AssistantTurn(turn.texts + tuple(call_as_text(c) for c in turn.calls), turn.thinking, ())


def _pair_tools(turns: list[Turn]) -> list[Turn]:
    """Keep a tool call only if the next turn answers it, and a result only if it answers the turn before.

    Everything else becomes text, so nothing the client sent is lost and Kiro never sees an orphan
    (SAM, KRS `validate_tool_pairing`; JW `ensure_tool_call_result_consistency`). Duplicate ids keep the
    first occurrence (AIC).
    """
    paired = list(turns)
    for index, turn in enumerate(turns):
        if not isinstance(turn, AssistantTurn):
            continue
        following = turns[index + 1] if index + 1 < len(turns) else None
        answered = {r.tool_call_id for r in following.results} if isinstance(following, UserTurn) else set()
        kept: list[ToolCallPart] = []
        orphans: list[ToolCallPart] = []
        for call in turn.calls:
            if call.id and call.id in answered and all(k.id != call.id for k in kept):
                kept.append(call)
            else:
                orphans.append(call)
        paired[index] = replace(turn, texts=turn.texts + tuple(call_as_text(c) for c in orphans), calls=tuple(kept))
    for index, turn in enumerate(paired):
        if not isinstance(turn, UserTurn):
            continue
        previous = paired[index - 1] if index > 0 else None
        open_ids = {c.id for c in previous.calls} if isinstance(previous, AssistantTurn) else set()
        results: list[ToolResultPart] = []
        stray: list[str] = []
        for result in turn.results:
            if result.tool_call_id in open_ids:
                open_ids.discard(result.tool_call_id)
                results.append(result)
            elif all(r.tool_call_id != result.tool_call_id for r in results):
                stray.append(result_as_text(result))
        paired[index] = replace(turn, texts=tuple(stray) + turn.texts, results=tuple(results))
    return paired


def shape_conversation(messages: Sequence[Message], *, tools_as_text: bool = False) -> Conversation:
    """Alternating, tool-consistent turns from the client's messages (never empty: `build_kiro_request` refuses that).

    Same-role runs merge (JW `merge_adjacent_messages`, KRS); a history that opens with the assistant gets
    an empty user turn in front (JW); a trailing assistant turn moves into history and the current turn is
    left empty for the caller's "Continue" placeholder (JW). `tools_as_text` turns every tool call and
    result into text, for requests that send Kiro no tools at all.
    """
    turns = _merged_turns(messages)
    if isinstance(turns[0], AssistantTurn):
        turns.insert(0, UserTurn())
    if isinstance(turns[-1], AssistantTurn):
        turns.append(UserTurn())
    turns = [_flatten_tools(t) for t in turns] if tools_as_text else _pair_tools(turns)
    current = turns[-1]
    assert isinstance(current, UserTurn)  # guaranteed by the append above
    return Conversation(tuple(turns[:-1]), current)

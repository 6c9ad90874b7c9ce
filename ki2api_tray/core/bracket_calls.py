"""Lifts tool calls the model wrote as text, `[Called NAME with args: {...}]`, out of the streamed answer.

Some peers serialise earlier tool calls into history as that bracket text, and models then answer in the
same syntax instead of a structured toolUseEvent (kiro-protocol.md §6.3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Literal

from .model import TextDelta, ToolCall

# The prefix up to the arguments, as peers match it: `\[Called\s+NAME\s+with\s+args:\s*\{`, case-insensitive.
# Each step is (kind, literal); kinds: "lit" (exact, lower-cased), "space" (one or more), "name" (one or
# more name characters), "opt_space" (zero or more).
_PREFIX: tuple[tuple[str, str], ...] = (
    ("lit", "[called"),
    ("space", ""),
    ("name", ""),
    ("space", ""),
    ("lit", "with"),
    ("space", ""),
    ("lit", "args:"),
    ("opt_space", ""),
    ("lit", "{"),
)
# OpenAI and Anthropic both cap tool names at 64 characters; a longer run of name characters is prose.
_MAX_NAME = 64
# Generous room for the whitespace the model may put between the words; beyond it this is not a call.
_MAX_PREFIX = 256
# Inside the arguments only these characters change the brace depth or the string state.
_JSON_SIGNIFICANT = re.compile(r'[{}"\\]')

_Phase = Literal["text", "prefix", "json", "close"]
_Step = Literal["more", "fail", "done"]


class BracketCallParser:
    """Streams text through, replacing complete `[Called NAME with args: {...}]` by ToolCall events.

    `names` maps a tool name as the model may write it to the name the client knows. Text from a
    possible `[Called` on is held back until the bracket closes or clearly is not a call; then it is
    released unchanged. Work per feed is proportional to the new text.
    """

    def __init__(self, names: Mapping[str, str], new_id: Callable[[], str]) -> None:
        self._names = names
        self._new_id = new_id
        self._phase: _Phase = "text"
        self._prefix = ""
        self._step = 0
        self._step_count = 0
        self._name = ""
        self._args: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._tail = ""

    def feed(self, text: str) -> list[TextDelta | ToolCall]:
        out: list[TextDelta | ToolCall] = []
        i, end = 0, len(text)
        while i < end:
            if self._phase == "text":
                start = text.find("[", i)
                if start < 0:
                    _emit_text(out, text[i:])
                    break
                if start > i:
                    _emit_text(out, text[i:start])
                self._begin_prefix()
                i = start
            elif self._phase == "prefix":
                i = self._feed_prefix(text, i, out)
            elif self._phase == "json":
                i = self._feed_json(text, i)
            else:
                i = self._feed_close(text, i, out)
        return out

    def flush(self) -> list[TextDelta | ToolCall]:
        """End of the answer: an unfinished bracket was only text after all."""
        out: list[TextDelta | ToolCall] = []
        if self._phase != "text":
            self._release(out)
        return out

    # --- phases -----------------------------------------------------------------------------------

    def _begin_prefix(self) -> None:
        self._phase = "prefix"
        self._prefix = ""
        self._step = 0
        self._step_count = 0
        self._name = ""

    def _feed_prefix(self, text: str, i: int, out: list[TextDelta | ToolCall]) -> int:
        end = len(text)
        while i < end:
            ch = text[i]
            result = self._match_prefix(ch)
            if result == "fail":
                # The character that broke the match is not consumed: it may itself open a bracket.
                self._release(out)
                return i
            self._prefix += ch
            i += 1
            if result == "done":
                # The `{` opens the arguments: it moves from the prefix into them.
                self._prefix = self._prefix[:-1]
                self._phase = "json"
                self._args = ["{"]
                self._depth = 1
                self._in_string = False
                self._escaped = False
                return i
            if len(self._prefix) > _MAX_PREFIX:
                self._release(out)
                return i
        return i

    def _match_prefix(self, ch: str) -> _Step:
        while True:
            kind, literal = _PREFIX[self._step]
            if kind == "lit":
                if ch.lower() != literal[self._step_count]:
                    return "fail"
                self._step_count += 1
                if self._step_count < len(literal):
                    return "more"
                return self._next_step()
            fits = ch.isspace() if kind != "name" else (ch.isalnum() or ch in "_-")
            if fits:
                self._step_count += 1
                if kind == "name":
                    self._name += ch
                    if len(self._name) > _MAX_NAME:
                        return "fail"
                return "more"
            if self._step_count == 0 and kind != "opt_space":
                return "fail"
            if kind == "name" and self._name not in self._names:
                return "fail"
            if self._next_step() == "done":
                return "done"

    def _next_step(self) -> _Step:
        self._step += 1
        self._step_count = 0
        return "done" if self._step == len(_PREFIX) else "more"

    def _feed_json(self, text: str, i: int) -> int:
        start = pos = i
        end = len(text)
        if self._escaped:
            # A backslash ended the previous chunk; the character it escapes is this chunk's first.
            self._escaped = False
            pos += 1
        while pos < end:
            match = _JSON_SIGNIFICANT.search(text, pos)
            if match is None:
                break
            at = match.start()
            ch = text[at]
            pos = at + 1
            if self._in_string:
                if ch == "\\":
                    if pos == end:
                        self._escaped = True
                    pos += 1
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch == "{":
                self._depth += 1
            elif ch == "}":
                self._depth -= 1
                if self._depth == 0:
                    self._args.append(text[start:pos])
                    self._phase = "close"
                    self._tail = ""
                    return pos
        self._args.append(text[start:])
        return end

    def _feed_close(self, text: str, i: int, out: list[TextDelta | ToolCall]) -> int:
        end = len(text)
        while i < end:
            ch = text[i]
            if ch == "]":
                arguments = "".join(self._args)
                if is_json_object(arguments):
                    out.append(ToolCall(id=self._new_id(), name=self._names[self._name], arguments=arguments))
                    self._phase = "text"
                    self._args = []
                else:
                    self._tail += ch
                    self._release(out)
                return i + 1
            if not ch.isspace():
                self._release(out)
                return i
            self._tail += ch
            i += 1
        return i

    def _release(self, out: list[TextDelta | ToolCall]) -> None:
        """Give back everything held since the `[` as plain text."""
        held = self._prefix
        if self._phase in ("json", "close"):
            held += "".join(self._args)
        if self._phase == "close":
            held += self._tail
        _emit_text(out, held)
        self._phase = "text"
        self._prefix = ""
        self._args = []
        self._tail = ""


def _emit_text(out: list[TextDelta | ToolCall], text: str) -> None:
    if not text:
        return
    if out and isinstance(out[-1], TextDelta):
        out[-1] = TextDelta(out[-1].text + text)
    else:
        out.append(TextDelta(text))


def is_json_object(text: str) -> bool:
    """Whether `text` is exactly one JSON object (what tool-call arguments must be)."""
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False

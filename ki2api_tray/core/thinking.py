"""Splits prompt-tag reasoning (`<thinking>…</thinking>` at the very start of a reply) from the visible answer.

With prompt-tag thinking (kiro-protocol.md §10.1) the reasoning arrives inside ordinary content deltas, cut
at arbitrary points, so the tags have to be recognised across chunk boundaries.
"""

from __future__ import annotations

from typing import Literal

from .model import TextDelta, ThinkingDelta

# The opening tags peers recognise; the model picks one depending on how the prompt phrased the request.
OPEN_TAGS = ("<thinking>", "<think>", "<reasoning>", "<thought>")

_Phase = Literal["start", "thinking", "after", "text"]


class ThinkingSplitter:
    """Turns the text deltas of one reply into ThinkingDelta and TextDelta pieces.

    Phases: "start" (deciding whether the reply opens with a tag), "thinking" (inside the tag), "after"
    (dropping blank lines after the closing tag), "text" (everything else, passed through untouched).
    Text is held back only while it could still be an opening tag, the start of the closing tag, or
    whitespace after the closing tag; each feed costs the length of the new text plus a tag length.
    """

    def __init__(self) -> None:
        self._phase: _Phase = "start"
        self._pending = ""
        self._close_tag = ""

    def feed(self, text: str) -> list[TextDelta | ThinkingDelta]:
        out: list[TextDelta | ThinkingDelta] = []
        # Each phase returns what it did not consume, to be handled by the phase it switched to.
        while text:
            if self._phase == "text":
                out.append(TextDelta(text))
                break
            if self._phase == "start":
                text = self._feed_start(text)
            elif self._phase == "thinking":
                text = self._feed_thinking(text, out)
            else:
                text = self._feed_after(text)
        return out

    def flush(self) -> list[TextDelta | ThinkingDelta]:
        """End of the reply: release whatever was held back."""
        pending, phase = self._pending, self._phase
        self._pending, self._phase = "", "text"
        if not pending:
            return []
        if phase == "start":
            return [TextDelta(pending)]
        if phase == "thinking":
            # The closing tag never came; what looked like its start is still reasoning.
            return [ThinkingDelta(pending)]
        return []

    def _feed_start(self, text: str) -> str:
        buffer = self._pending + text
        body = buffer.lstrip()
        if not body:
            self._pending = buffer
            return ""
        for tag in OPEN_TAGS:
            if body.startswith(tag):
                self._pending = ""
                self._close_tag = "</" + tag[1:]
                self._phase = "thinking"
                return body[len(tag) :]
        if any(tag.startswith(body) for tag in OPEN_TAGS):
            self._pending = buffer
            return ""
        # Not a thinking reply: the text we held (leading whitespace included) is ordinary answer text.
        self._pending = ""
        self._phase = "text"
        return buffer

    def _feed_thinking(self, text: str, out: list[TextDelta | ThinkingDelta]) -> str:
        buffer = self._pending + text
        close = self._close_tag
        end = buffer.find(close)
        if end >= 0:
            if end:
                out.append(ThinkingDelta(buffer[:end]))
            self._pending = ""
            self._phase = "after"
            return buffer[end + len(close) :]
        keep = _partial_suffix(buffer, close)
        cut = len(buffer) - keep
        if cut:
            out.append(ThinkingDelta(buffer[:cut]))
        self._pending = buffer[cut:]
        return ""

    def _feed_after(self, text: str) -> str:
        buffer = self._pending + text
        body = buffer.lstrip()
        if not body:
            self._pending = buffer
            return ""
        self._pending = ""
        self._phase = "text"
        skipped = buffer[: len(buffer) - len(body)]
        newline = skipped.rfind("\n")
        # Blank lines after `</thinking>` are separators, but the first answer line keeps its indentation
        # (an indented code block would otherwise change meaning).
        return (skipped[newline + 1 :] if newline >= 0 else "") + body


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag` (0 if none)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0

"""Limits the client set on the answer that Kiro cannot enforce: stop strings, max tokens, one tool call.

`OutputGuard` sits between the Kiro stream translator and the client's encoder. When it ends an answer
early it emits its own Usage and Finish and sets `done`, so the relay can close the upstream request.
Output is counted with the same estimator as usage (`tokencount`), so the cut is an estimate too.
"""

from __future__ import annotations

from collections.abc import Sequence

from .kiro_stream import cut_call_note
from .model import Finish, StopReason, StreamEvent, TextDelta, ThinkingDelta, ToolCall, Usage
from .stop_sequences import StopMatcher
from .tokencount import text_weight, tokens_for_weight


class OutputGuard:
    """Applies `stop`, `max_tokens` and `single_call` (parallel tool calls off) to a stream of events.

    `input_tokens` is only used for the Usage of an answer it cuts short. Once `done`, `feed` returns
    nothing: the answer is complete.
    """

    def __init__(
        self,
        *,
        stop: Sequence[str] = (),
        max_tokens: int | None = None,
        single_call: bool = False,
        input_tokens: int = 0,
    ) -> None:
        self._matcher = StopMatcher(stop) if any(stop) else None
        self._limit = max_tokens
        self._single_call = single_call
        self._input_tokens = input_tokens
        self._weight = 0
        self._calls = 0
        self._dropped_calls = 0
        self.done = False

    @property
    def active(self) -> bool:
        """Whether there is anything to enforce; a guard that is not can be left out of the pipeline."""
        return self._matcher is not None or self._limit is not None or self._single_call

    @property
    def dropped_calls(self) -> int:
        """Tool calls left out because the client asked for one call at a time."""
        return self._dropped_calls

    def feed(self, events: Sequence[StreamEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if self.done:
                break
            if isinstance(event, TextDelta):
                released = self._matcher.feed(event.text) if self._matcher else event.text
                self._counted(released, TextDelta, out)
                if self._matcher is not None and self._matcher.matched is not None and not self.done:
                    self._end(out, "stop_sequence", self._matcher.matched)
            elif isinstance(event, ThinkingDelta):
                self._counted(event.text, ThinkingDelta, out)
            elif isinstance(event, ToolCall):
                self._release_held(out)
                self._tool_call(event, out)
            else:
                self._release_held(out)
                if not self.done:
                    out.append(event)
                    self.done = isinstance(event, Finish)
        return out

    def _release_held(self, out: list[StreamEvent]) -> None:
        # Text held back for a possible stop string is safe once something else follows it.
        if self._matcher is not None and not self.done:
            self._counted(self._matcher.flush(), TextDelta, out)

    def _counted(self, text: str, kind: type[TextDelta] | type[ThinkingDelta], out: list[StreamEvent]) -> None:
        """Emit `text` as far as the token limit allows; at the limit, end the answer."""
        if not text or self.done:
            return
        weight = text_weight(text)
        if self._limit is None or tokens_for_weight(self._weight + weight) <= self._limit:
            self._weight += weight
            out.append(kind(text))
            return
        # The estimate is not monotonic in length (short texts are scaled up), so look at every cut.
        fits, running = 0, self._weight
        for index, char in enumerate(text, start=1):
            running += text_weight(char)
            if tokens_for_weight(running) <= self._limit:
                fits, fit_weight = index, running
        if fits:
            self._weight = fit_weight
            out.append(kind(text[:fits]))
        self._end(out, "max_tokens")

    def _tool_call(self, call: ToolCall, out: list[StreamEvent]) -> None:
        if self.done:
            return
        if self._single_call and self._calls:
            self._dropped_calls += 1
            return
        weight = text_weight(call.arguments)
        if self._limit is not None and tokens_for_weight(self._weight + weight) > self._limit:
            # Arguments are never cut in the middle: the call is dropped and the client told why.
            note = cut_call_note(call.name, call.arguments, by="the max_tokens limit", after_output=self._weight > 0)
            out.append(TextDelta(note))
            self._end(out, "max_tokens")
            return
        self._weight += weight
        self._calls += 1
        out.append(call)

    def _end(self, out: list[StreamEvent], reason: StopReason, stop_sequence: str = "") -> None:
        out.append(Usage(input_tokens=self._input_tokens, output_tokens=tokens_for_weight(self._weight)))
        out.append(Finish(reason, stop_sequence))
        self.done = True

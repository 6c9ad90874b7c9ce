"""Stop sequences over streamed text: the answer ends where the first stop string completes.

Kiro has no `stop` parameter, so ki2api watches the text itself. A stop string can arrive split over
several deltas ("hel" + "lo"), so the tail of the text that could still become a match is held back,
never more than the longest stop string's length minus one character, until it is ruled out.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feeds text in, lets safe text out; after a match, `matched` names the stop string.

    The first stop string to *complete* wins, as it would when a model generates token by token; the
    stop string itself and everything after it are never released.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(dict.fromkeys(s for s in stops if s))
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._firsts = frozenset(s[0] for s in self._stops)
        self._pending = ""
        self.matched: str | None = None

    @property
    def held(self) -> str:
        """Text received but not yet released (it may be the start of a stop string)."""
        return self._pending

    def feed(self, text: str) -> str:
        """The text that can be released now; after a match only the text before it, then nothing."""
        if self.matched is not None or not text:
            return ""
        buffer = self._pending + text
        best: tuple[int, int, str] | None = None
        for stop in self._stops:
            start = buffer.find(stop)
            if start >= 0:
                key = (start + len(stop), start, stop)
                if best is None or key[:2] < best[:2]:
                    best = key
        if best is not None:
            self.matched = best[2]
            self._pending = ""
            return buffer[: best[1]]
        keep = self._possible_start(buffer)
        self._pending = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """The held text, released because the answer ended (or something other than text follows)."""
        held, self._pending = self._pending, ""
        return held

    def _possible_start(self, buffer: str) -> int:
        """Length of the longest tail of `buffer` that is the beginning of some stop string."""
        for size in range(min(self._hold, len(buffer)), 0, -1):
            if buffer[-size] not in self._firsts:
                continue
            tail = buffer[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0

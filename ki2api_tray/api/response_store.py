"""The conversations behind recent Responses API answers, so `previous_response_id` can continue them.

Bounded and in memory only: ki2api forgets them on restart, and the oldest go first once the bound is
reached. A client that needs longer memory sends the whole conversation (as Codex does, `store: false`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..core.errors import InvalidRequest
from ..core.model import Message
from ..core.responses_request import ResponsesRequest

MAX_RESPONSES = 200
# A conversation can be large (Codex sends ~40 kB of tools and instructions); bound the text kept as well.
MAX_CHARS = 50_000_000


def _size(messages: tuple[Message, ...]) -> int:
    return sum(len(repr(part)) for message in messages for part in message.parts)


class ResponseStore:
    def __init__(self, max_responses: int = MAX_RESPONSES, max_chars: int = MAX_CHARS) -> None:
        self._max_responses = max_responses
        self._max_chars = max_chars
        self._items: OrderedDict[str, tuple[tuple[Message, ...], int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def put(self, response_id: str, messages: tuple[Message, ...]) -> None:
        size = _size(messages)
        with self._lock:
            self._items[response_id] = (messages, size)
            self._chars += size
            while self._items and (len(self._items) > self._max_responses or self._chars > self._max_chars):
                _, (_, dropped) = self._items.popitem(last=False)
                self._chars -= dropped

    def get(self, response_id: str) -> tuple[Message, ...] | None:
        with self._lock:
            entry = self._items.get(response_id)
            if entry is None:
                return None
            self._items.move_to_end(response_id)
            return entry[0]

    def continued(self, parsed: ResponsesRequest) -> ResponsesRequest:
        """The request continuing the conversation its `previous_response_id` names; a 400 when it is unknown."""
        if parsed.previous_response_id is None:
            return parsed
        history = self.get(parsed.previous_response_id)
        if history is None:
            raise InvalidRequest(
                f"Previous response with id {parsed.previous_response_id!r} not found. ki2api keeps recent "
                "responses in memory only (not after a restart, not with store: false); send the whole "
                "conversation instead.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return parsed.after(history)

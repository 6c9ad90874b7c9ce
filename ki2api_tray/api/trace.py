"""Trace: the facts of one chat request, gathered as it passes through and reported once when it ends.

What reaches the reporter (and so the usage store) is a `RequestRecord`: who asked (the client named by its
User-Agent), for which model, what ki2api changed on the way, how long Kiro took, what it billed, and how
it ended. Never the conversation, never a key.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import datetime

from ..core.errors import Ki2apiError
from ..core.model import ChatRequest, Finish, StreamEvent, Usage
from ..kiro.relay import Turn
from ..state import Reporter, RequestRecord

CLIENT_LIMIT = 40
_PRODUCT = re.compile(r"[A-Za-z][\w.+-]*(?:/[A-Za-z][\w.+-]*)*")


def client_name(user_agent: str) -> str:
    """The product a User-Agent names, without its version: "claude-cli", "OpenAI/Python", "curl"."""
    first = user_agent.strip().split(" ", 1)[0] if user_agent.strip() else ""
    # "OpenAI/Python 1.51.0" and "claude-cli/2.1.3 (external, cli)": drop a trailing "/<version>".
    parts = first.split("/")
    while len(parts) > 1 and parts[-1][:1].isdigit():
        parts.pop()
    match = _PRODUCT.match("/".join(parts))
    return match.group(0)[:CLIENT_LIMIT] if match else ""


class Trace:
    """Collects one request's facts; `finish` / `fail` / `abandon` report it (only the first call counts)."""

    def __init__(self, reporter: Reporter, *, api: str, user_agent: str, chat: ChatRequest) -> None:
        self._reporter = reporter
        self._started = time.perf_counter()
        self._time = datetime.now().astimezone()
        self._reported = False
        self._ttfb_ms: float | None = None
        self._usage: Usage | None = None
        self._turn: Turn | None = None
        self.api = api
        self.client = client_name(user_agent)
        self.chat = chat

    def prepared(self, turn: Turn) -> None:
        self._turn = turn

    def first_chunk(self) -> None:
        if self._ttfb_ms is None:
            self._ttfb_ms = (time.perf_counter() - self._started) * 1000

    async def watch(self, batches: AsyncIterator[list[StreamEvent]]) -> AsyncIterator[list[StreamEvent]]:
        """Pass the batches on untouched, noting the Usage that closes the stream."""
        async for batch in batches:
            if batch and isinstance(batch[-1], Finish):
                self.saw(batch)
            yield batch

    def saw(self, events: list[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, Usage):
                self._usage = event

    def finish(self) -> None:
        self._report(200, None)

    def fail(self, error: Ki2apiError) -> None:
        self._report(error.status, error)

    def abandon(self) -> None:
        """The client went away before the answer was complete (499, nginx's "client closed request")."""
        self._report(499, None, message="client disconnected", kind="client_disconnected")

    def _report(self, status: int, error: Ki2apiError | None, *, message: str = "", kind: str = "") -> None:
        if self._reported:
            return
        self._reported = True
        if error is not None:
            message, kind = error.message, error.code or error.kind
        turn, usage = self._turn, self._usage
        record = RequestRecord(
            time=self._time,
            api=self.api,
            client=self.client,
            model_requested=self.chat.model,
            model=turn.model.model.model_id if turn is not None else "",
            login=turn.login if turn is not None else "",
            status=status,
            error_kind=kind,
            error=message,
            duration_ms=(time.perf_counter() - self._started) * 1000,
            ttfb_ms=self._ttfb_ms,
            input_tokens=usage.input_tokens if usage is not None else (turn.input_tokens if turn else None),
            output_tokens=usage.output_tokens if usage is not None else None,
            context_percent=usage.context_percent if usage is not None else None,
            credits=usage.credits if usage is not None else None,
            stream=self.chat.stream,
            changes=(
                *((a.kind, a.detail) for a in (turn.adjustments if turn is not None else ())),
                *(("field_removed", name) for name in self.chat.dropped),
            ),
        )
        self._reporter.request_finished(status < 400, message, record)

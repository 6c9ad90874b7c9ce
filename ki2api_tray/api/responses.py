"""How answers leave the server: JSON that survives odd input, and SSE streams fed by a pump task.

A chat request waits for Kiro in phases (`begin`, then `collect` or `sse_response`); each phase gives up
when the client disconnects or the server is stopping, so Kiro never generates for nobody and a
restart never waits on a long answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from ..core.errors import InvalidRequest, Ki2apiError, KiroUnavailable
from ..core.model import ChatRequest, Finish, StreamEvent, TextDelta, Usage, WebSearch
from ..core.tokencount import estimate_request_tokens
from ..core.web_search import query_from_request, search_function_name, search_tool, summary_text
from ..kiro.answer import answer
from ..kiro.relay import Relay, Turn
from ..kiro.web_search import WebSearcher, search_id, search_rounds
from .trace import Trace

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
# How often a waiting request looks whether the server is stopping (the service says so through `status`).
STOP_POLL_SECONDS = 0.25
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Batches = AsyncIterator[list[StreamEvent]]
T = TypeVar("T")


class SurrogateSafeJSONResponse(JSONResponse):
    """JSON that survives a lone UTF-16 surrogate, which a client's or Kiro's `\\ud83d` escape can carry in.

    Such a string cannot be UTF-8; the plain renderer would fail and turn good input into a 500.
    Falling back to ASCII escapes keeps the same (valid JSON) text, as the Kiro request encoder does.
    """

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


class Outcome(Protocol):
    """How a streamed answer ended, told once (a `Trace` reports it)."""

    def finish(self) -> None: ...

    def fail(self, error: Ki2apiError) -> None: ...

    def abandon(self) -> None: ...


class ClientGone(Exception):
    """Internal: the client disconnected before its answer was ready."""


def server_stopping() -> Ki2apiError:
    return Ki2apiError(
        "ki2api is stopping or restarting, so this request was cut short; send it again in a moment.",
        code="server_stopping",
        status=503,
    )


async def _disconnected(request: Request) -> None:
    """Return once the client has gone; only called after the whole body was read."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_abandoned(request: Request, work: Awaitable[T], stopping: Callable[[], bool]) -> T:
    """Await `work`, but give up (cancelling it) when the client disconnects or the server is stopping.

    Starlette cancels a handler only once its response has started. Before that a slow Kiro would keep
    generating for nobody until its first byte, and a restart would wait for it.
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        while True:
            done, _ = await asyncio.wait({task, gone}, timeout=STOP_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            if gone in done:
                raise ClientGone
            if stopping():
                raise server_stopping()
    finally:
        task.cancel()
        gone.cancel()
        await asyncio.gather(task, gone, return_exceptions=True)


async def begin(relay: Relay, chat: ChatRequest, trace: Trace | None = None) -> tuple[Turn, Batches, list[StreamEvent]]:
    """Prepare the turn and wait for Kiro's first chunk, so errors before it still get a proper HTTP status."""
    turn, answered = await answer(relay, chat)
    batches: Batches = answered
    if trace is not None:
        trace.prepared(turn)
        batches = trace.watch(batches)
    try:
        first = await batches.__anext__()
    except StopAsyncIteration:
        first = []
    if trace is not None:
        trace.first_chunk()
    return turn, batches, first


async def begin_searching(
    relay: Relay, searcher: WebSearcher, chat: ChatRequest, trace: Trace | None = None
) -> tuple[Turn, Batches, list[StreamEvent]]:
    """As `begin`, with a search function offered to the model; its calls are run here (`search_rounds`).

    The rounds go to Kiro directly, not through `answer`: stop strings and structured output do not apply.
    """
    name = search_function_name(chat)
    turn = await relay.prepare(replace(chat, tools=(*chat.tools, search_tool(name))))
    batches: Batches = search_rounds(relay, searcher, turn, tool_name=name)
    if trace is not None:
        trace.prepared(turn)
        batches = trace.watch(batches)
    try:
        first = await batches.__anext__()
    except StopAsyncIteration:
        first = []
    if trace is not None:
        trace.first_chunk()
    return turn, batches, first


async def search_only(searcher: WebSearcher, chat: ChatRequest) -> list[StreamEvent]:
    """A request that is only a search (Claude Code's WebSearch side query): Kiro's search, no model call.

    A refused search is raised, so the client gets a clear error instead of "0 results".
    """
    query = query_from_request(chat)
    if not query:
        raise InvalidRequest("The web search request has no user text to search for.", param="messages")
    search = WebSearch(search_id(), query, await searcher.search(query))
    text = summary_text(search.query, search.results)
    return [search, TextDelta(text), Usage(estimate_request_tokens(chat), max(1, len(text) // 4)), Finish("end_turn")]


async def _listed(events: list[StreamEvent]) -> Batches:
    if events:
        yield events


def as_batches(events: list[StreamEvent]) -> Batches:
    """Events already in hand, as the batches `sse_response` reads."""
    return _listed(events)


def answered_by(turn: Turn) -> str:
    """The `model` an answer names: the Kiro model that served it, whatever name the client sent."""
    return turn.model.model.model_id


async def collect(first: list[StreamEvent], batches: Batches) -> list[StreamEvent]:
    events = list(first)
    async for batch in batches:
        events.extend(batch)
    return events


_END = object()
_EMPTY = object()  # nothing queued right now


def sse_response(
    opening: bytes,
    first: list[StreamEvent],
    batches: Batches,
    *,
    encode: Callable[[list[StreamEvent]], bytes],
    error: Callable[[Ki2apiError], bytes],
    keepalive: bytes,
    closing: bytes,
    outcome: Outcome,
    stopping: Callable[[], bool],
) -> StreamingResponse:
    """Stream SSE: a pump task reads Kiro while the response sends keep-alives during long silences.

    If the client goes away, Starlette cancels the body; cancelling the pump closes the upstream
    request, so Kiro stops generating for nobody. If the server is stopping, the stream ends with an
    error event at once, so clients learn why and a restart does not wait for long answers.
    """

    async def body() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=256)
        pump = asyncio.create_task(_pump(batches, queue))
        ok, problem = False, None
        try:
            yield opening + encode(first)
            while True:
                item = await _next_item(queue, stopping)
                if isinstance(item, list):
                    ready, item = _take_ready(item, queue)
                    yield b"".join(encode(batch) for batch in ready)
                    if item is _EMPTY:
                        continue
                if item is None:
                    yield keepalive
                elif item is _END:
                    ok = True
                    if closing:
                        yield closing
                    return
                elif isinstance(item, Ki2apiError):
                    problem = item
                    log.warning("stream ended early: %s", item.message)
                    yield error(item)
                    return
        finally:
            pump.cancel()
            # After a disconnect Starlette re-cancels this body on every loop pass until it returns, and each
            # cancel would be passed on into the pump while it closes the Kiro request; shielded, it finishes.
            with anyio.CancelScope(shield=True), contextlib.suppress(asyncio.CancelledError):
                await pump
            if ok:
                outcome.finish()
            elif problem is not None:
                outcome.fail(problem)
            else:
                outcome.abandon()

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def _take_ready(batch: list[StreamEvent], queue: asyncio.Queue[object]) -> tuple[list[list[StreamEvent]], object]:
    """`batch` and every batch already queued behind it, then the next other item (or `_EMPTY`).

    Under load Kiro's frames arrive several per network read; sending all that is ready in one write
    saves an ASGI send and a socket write per event (about 15% of ki2api's CPU per event, benchmarks/).
    """
    ready = [batch]
    while not queue.empty():
        item = queue.get_nowait()
        if not isinstance(item, list):
            return ready, item
        ready.append(item)
    return ready, _EMPTY


async def _next_item(queue: asyncio.Queue[object], stopping: Callable[[], bool]) -> object:
    """The pump's next item; None after KEEPALIVE_SECONDS of silence; an error once the server is stopping."""
    waited = 0.0
    while not stopping():
        if not queue.empty():
            return queue.get_nowait()
        if waited >= KEEPALIVE_SECONDS:
            return None
        wait = min(STOP_POLL_SECONDS, KEEPALIVE_SECONDS - waited)
        try:
            return await asyncio.wait_for(queue.get(), wait)
        except asyncio.TimeoutError:
            waited += wait
    return server_stopping()


async def _pump(batches: Batches, queue: asyncio.Queue[object]) -> None:
    try:
        async for batch in batches:
            if batch:
                await queue.put(batch)
        await queue.put(_END)
    except Ki2apiError as error:
        await queue.put(error)
    except Exception:
        log.exception("unexpected failure while reading Kiro's stream")
        await queue.put(KiroUnavailable("ki2api failed while reading Kiro's answer; details are in its log file."))

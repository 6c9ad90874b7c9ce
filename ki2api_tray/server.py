"""The HTTP API: OpenAI- and Anthropic-compatible routes, auth, error shapes, streaming.

`create_app()` builds a fresh FastAPI app per server start. Request bodies are parsed by the core
translators (not by pydantic), so every bad input becomes a 4xx in the caller's own error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .config import Settings
from .core.anthropic_format import (
    AnthropicStreamEncoder,
    anthropic_count_tokens,
    anthropic_error_body,
    anthropic_message,
    anthropic_to_chat,
)
from .core.errors import AuthenticationFailed, InvalidRequest, Ki2apiError, KiroUnavailable, RequestTooLarge
from .core.model import ChatRequest, StreamEvent
from .core.models import public_model_ids
from .core.openai_format import (
    OpenAIStreamEncoder,
    openai_completion,
    openai_error_body,
    openai_model_list,
    openai_to_chat,
)
from .core.sse import format_sse
from .keeper import keep_fresh
from .relay import Relay, Turn
from .state import Phase, Reporter, Status
from .status_page import render_status_page
from .tokens import TokenStore
from .upstream import KiroClient

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
# How often a waiting request looks whether the server is stopping (the service says so through `status`).
STOP_POLL_SECONDS = 0.25
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Batches = AsyncIterator[list[StreamEvent]]
T = TypeVar("T")


def create_app(
    settings: Settings,
    tokens: TokenStore,
    reporter: Reporter,
    status: Callable[[], Status],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """A new app; `transport` lets tests route upstream traffic without a network."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=max(settings.first_byte_timeout, settings.idle_timeout),
            write=60.0,
            pool=settings.connect_timeout,
        )
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport, trust_env=True) as http:
            client = KiroClient(settings, tokens, http)
            app.state.client = client
            app.state.relay = Relay(client, http)
            keeper = asyncio.create_task(keep_fresh(tokens, client, http, reporter))
            try:
                yield
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    app = FastAPI(
        title="ki2api",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        default_response_class=SurrogateSafeJSONResponse,
    )
    expected_key = settings.api_key.encode("utf-8")

    def check_key(request: Request) -> None:
        sent = request.headers.get("x-api-key", "")
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            sent = auth[7:].strip()
        # compare_digest keeps the comparison time independent of how much of the key matched.
        if not secrets.compare_digest(sent.encode("utf-8"), expected_key):
            raise AuthenticationFailed(
                "Invalid API key. Send the key from ki2api's config (default ki2api-key-2024) as "
                "'Authorization: Bearer <key>' or 'x-api-key: <key>'."
            )

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise _too_large(settings.max_body_bytes)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_body_bytes:
                raise _too_large(settings.max_body_bytes)
        try:
            return json.loads(body, parse_constant=_not_json_constant, parse_float=_finite_float)
        except RecursionError as exc:
            raise InvalidRequest("The request body is nested too deeply.") from exc
        except ValueError as exc:
            raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from exc

    def relay(request: Request) -> Relay:
        return request.app.state.relay  # type: ignore[no-any-return]

    def stopping() -> bool:
        return status().phase is Phase.STOPPING

    async def settle(request: Request, work: Awaitable[T]) -> T:
        """Await one phase of a chat request; a failure, a vanished client or a stopping server is reported."""
        try:
            return await _unless_abandoned(request, work, stopping)
        except _ClientGone:
            reporter.request_finished(False, "client disconnected")
            raise
        except Ki2apiError as error:
            reporter.request_finished(False, error.message)
            raise

    @app.exception_handler(Ki2apiError)
    async def on_ki2api_error(request: Request, error: Ki2apiError) -> JSONResponse:
        return _error_response(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = InvalidRequest(f"{request.method} {request.url.path}: {exc.detail}", code="not_found")
        error.status = exc.status_code
        if exc.status_code == 404:
            error.kind = "not_found_error"
        return _error_response(request, error)

    @app.exception_handler(_ClientGone)
    async def on_client_gone(request: Request, exc: _ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it; 499 is the usual "client closed request"

    @app.exception_handler(RecursionError)
    async def on_recursion(request: Request, exc: RecursionError) -> JSONResponse:
        return _error_response(request, InvalidRequest("The request is nested too deeply to translate."))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error while handling %s %s", request.method, request.url.path)
        error = Ki2apiError("ki2api hit an internal error; details are in its log file.", code="internal_error")
        return _error_response(request, error)

    @app.get("/", response_class=HTMLResponse)
    async def status_page() -> HTMLResponse:
        page = render_status_page(
            status(),
            base_url=settings.base_url,
            language=settings.language,
            config_file=str(settings.app_paths.config_file),
        )
        return HTMLResponse(page)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        body = status().as_public_dict()
        if body["status"] == Phase.STARTING.value:  # answering at all means uvicorn is up; the phase catches up
            body["status"] = Phase.RUNNING.value
        return {**body, "version": __version__}

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        check_key(request)
        ids = public_model_ids(await request.app.state.client.models())
        if "anthropic-version" in request.headers:
            data = [{"type": "model", "id": i, "display_name": i, "created_at": "2025-05-14T00:00:00Z"} for i in ids]
            return {
                "data": data,
                "has_more": False,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            }
        return openai_model_list(ids, created=1_747_180_800)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        check_key(request)
        raw = await read_json(request)
        chat = openai_to_chat(raw)
        _, batches, first = await settle(request, _begin(relay(request), chat))
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not chat.stream:
            events = await settle(request, _collect(first, batches))
            reporter.request_finished(True)
            return SurrogateSafeJSONResponse(
                openai_completion(events, model=chat.model, completion_id=completion_id, created=created)
            )
        options = raw.get("stream_options") if isinstance(raw, dict) else None
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        encoder = OpenAIStreamEncoder(
            model=chat.model, completion_id=completion_id, created=created, include_usage=include_usage
        )

        def encode(batch: list[StreamEvent]) -> bytes:
            return b"".join(_sse_event(chunk) for event in batch for chunk in encoder.encode(event))

        opening = b"".join(_sse_event(chunk) for chunk in encoder.start())
        return _sse(
            opening,
            first,
            batches,
            encode=encode,
            error=lambda e: _sse_event(openai_error_body(e)),
            keepalive=b": keep-alive\n\n",
            closing=_sse_event("[DONE]"),
            reporter=reporter,
            stopping=stopping,
        )

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        check_key(request)
        chat = anthropic_to_chat(await read_json(request))
        turn, batches, first = await settle(request, _begin(relay(request), chat))
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        if not chat.stream:
            events = await settle(request, _collect(first, batches))
            reporter.request_finished(True)
            body = anthropic_message(events, model=chat.model, message_id=message_id, input_tokens=turn.input_tokens)
            return SurrogateSafeJSONResponse(body)
        encoder = AnthropicStreamEncoder(model=chat.model, message_id=message_id, input_tokens=turn.input_tokens)

        def encode(batch: list[StreamEvent]) -> bytes:
            return b"".join(_sse_event(data, name) for event in batch for name, data in encoder.encode(event))

        ping_name, ping_data = AnthropicStreamEncoder.ping()
        return _sse(
            b"".join(_sse_event(data, name) for name, data in encoder.start()),
            first,
            batches,
            encode=encode,
            error=lambda e: _sse_event(anthropic_error_body(e), "error"),
            keepalive=_sse_event(ping_data, ping_name),
            closing=b"",
            reporter=reporter,
            stopping=stopping,
        )

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request) -> dict[str, Any]:
        check_key(request)
        return anthropic_count_tokens(await read_json(request))

    return app


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


# Python's str.splitlines (and so httpx's `iter_lines`, which SSE readers build on) also ends a line at
# these. In JSON text they can only sit inside strings, where their \u escapes mean the same.
_SPLITLINES_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def _sse_event(data: Any, event: str | None = None) -> bytes:
    """One SSE message whose JSON never breaks a line reader, even with lone surrogates or U+2028 inside."""
    try:
        raw = format_sse(data, event)
    except UnicodeEncodeError:
        return format_sse(json.dumps(data, separators=(",", ":")), event)  # all ASCII
    for char, escape in _SPLITLINES_BREAKS:
        if char in raw:
            raw = raw.replace(char, escape)
    return raw


def _not_json_constant(name: str) -> Any:
    # Python's parser accepts NaN and Infinity; JSON, Kiro and every client's parser do not.
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body is larger than {limit // (1024 * 1024)} MB; send smaller images or a shorter "
        "conversation (or raise KI2API_MAX_BODY_BYTES)."
    )


def _is_anthropic(request: Request) -> bool:
    return request.url.path.startswith("/v1/messages") or "anthropic-version" in request.headers


def _error_response(request: Request, error: Ki2apiError) -> JSONResponse:
    body = anthropic_error_body(error) if _is_anthropic(request) else openai_error_body(error)
    return SurrogateSafeJSONResponse(body, status_code=error.status)


class _ClientGone(Exception):
    """Internal: the client disconnected before its answer was ready."""


def _server_stopping() -> Ki2apiError:
    error = Ki2apiError(
        "ki2api is stopping or restarting, so this request was cut short; send it again in a moment.",
        code="server_stopping",
    )
    error.status = 503
    return error


async def _disconnected(request: Request) -> None:
    """Return once the client has gone; only called after the whole body was read."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_abandoned(request: Request, work: Awaitable[T], stopping: Callable[[], bool]) -> T:
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
                raise _ClientGone
            if stopping():
                raise _server_stopping()
    finally:
        task.cancel()
        gone.cancel()
        await asyncio.gather(task, gone, return_exceptions=True)


async def _begin(relay: Relay, chat: ChatRequest) -> tuple[Turn, Batches, list[StreamEvent]]:
    """Prepare the turn and wait for Kiro's first chunk, so errors before it still get a proper HTTP status."""
    turn = await relay.prepare(chat)
    batches = relay.events(turn)
    try:
        first = await batches.__anext__()
    except StopAsyncIteration:
        first = []
    return turn, batches, first


async def _collect(first: list[StreamEvent], batches: Batches) -> list[StreamEvent]:
    events = list(first)
    async for batch in batches:
        events.extend(batch)
    return events


_END = object()
_EMPTY = object()  # nothing queued right now


def _sse(
    opening: bytes,
    first: list[StreamEvent],
    batches: Batches,
    *,
    encode: Callable[[list[StreamEvent]], bytes],
    error: Callable[[Ki2apiError], bytes],
    keepalive: bytes,
    closing: bytes,
    reporter: Reporter,
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
        ok, problem = False, "client disconnected"
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
                    problem = item.message
                    log.warning("stream ended early: %s", item.message)
                    yield error(item)
                    return
        finally:
            pump.cancel()
            # After a disconnect Starlette re-cancels this body on every loop pass until it returns, and each
            # cancel would be passed on into the pump while it closes the Kiro request; shielded, it finishes.
            with anyio.CancelScope(shield=True), contextlib.suppress(asyncio.CancelledError):
                await pump
            reporter.request_finished(ok, "" if ok else problem)

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
    return _server_stopping()


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

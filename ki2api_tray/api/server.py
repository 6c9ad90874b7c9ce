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
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from .. import __version__
from ..config import Settings
from ..core.anthropic_format import (
    AnthropicStreamEncoder,
    anthropic_count_tokens,
    anthropic_error_body,
    anthropic_message,
    anthropic_to_chat,
)
from ..core.errors import AuthenticationFailed, InvalidRequest, Ki2apiError, RequestTooLarge
from ..core.model import ChatRequest, StreamEvent
from ..core.models import public_models
from ..core.openai_format import (
    OpenAIStreamEncoder,
    openai_completion,
    openai_error_body,
    openai_model_list,
    openai_to_chat,
)
from ..core.responses_request import responses_to_chat
from ..core.responses_response import ResponsesEncoder, responses_object
from ..core.sse import format_sse
from ..core.tokencount import estimate_request_tokens
from ..core.web_search import anthropic_search_tool
from ..kiro import tls
from ..kiro.account_pool import AccountPool
from ..kiro.images import ImageFetcher
from ..kiro.pooled_client import PooledClient
from ..kiro.relay import Relay
from ..kiro.tokens import TokenStore
from ..kiro.web_search import WebSearcher
from ..state import Phase, Reporter, Status
from ..usage.store import UsageStore
from .guard import GuardPolicy, RequestGuard
from .public_view import public_status, scrub
from .response_store import ResponseStore
from .responses import (
    ClientGone,
    SurrogateSafeJSONResponse,
    answered_by,
    as_batches,
    begin,
    begin_searching,
    collect,
    search_only,
    sse_response,
    unless_abandoned,
)
from .status_page import page_language, render_status_page
from .trace import Trace
from .usage_api import add_usage_routes

log = logging.getLogger(__name__)

T = TypeVar("T")


def create_app(
    settings: Settings,
    tokens: TokenStore | AccountPool,
    reporter: Reporter,
    status: Callable[[], Status],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    usage: UsageStore | None = None,
) -> FastAPI:
    """A new app; `transport` lets tests route upstream traffic without a network; `usage` answers /api/*."""
    pool = tokens if isinstance(tokens, AccountPool) else AccountPool.single(settings, tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=max(settings.first_byte_timeout, settings.idle_timeout),
            write=60.0,
            pool=settings.connect_timeout,
        )
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        verify = await tls.context(trust_env=True)
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, transport=transport, trust_env=True, verify=verify
        ) as http:
            client = PooledClient(pool, http, reporter)
            app.state.client = client
            # Off loopback, image URLs must not reach this machine or its network (unless the user allows it).
            images = ImageFetcher(
                guard_private=not (settings.on_loopback or settings.image_fetch_private),
                verify=await tls.context(trust_env=False),
            )
            app.state.relay = Relay(
                client, images, default_model=settings.default_model, fallback=settings.model_fallback
            )
            # Web search (Kiro's /mcp) stays on the first account for now; chat fails over between accounts.
            app.state.searcher = WebSearcher(settings, client.client(pool.accounts[0]), http)
            keeper = asyncio.create_task(client.keep_fresh())
            try:
                yield
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
                await images.aclose()

    app = FastAPI(
        title="ki2api",
        version=__version__,
        lifespan=lifespan,
        # Bodies are parsed by the core translators; no schema or docs pages are served to anyone.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=SurrogateSafeJSONResponse,
    )
    # Applied to the whole app, in front of routing: it covers every route, including ones added later.
    app.add_middleware(RequestGuard, policy=GuardPolicy.from_settings(settings), refuse=_error_response)
    expected_key = settings.api_key.encode("utf-8")
    stored = ResponseStore()

    def key_matches(request: Request) -> bool:
        """True when either header carries the key: a client may send a stale one in the other header."""
        auth = request.headers.get("authorization", "")
        candidates = [request.headers.get("x-api-key")]
        if auth[:7].lower() == "bearer ":
            candidates.append(auth[7:].strip())
        sent = [c for c in candidates if c is not None] or [""]
        # compare_digest keeps the comparison time independent of how much of the key matched; every
        # header sent is compared, so the timing does not say which one held the key.
        return any([secrets.compare_digest(c.encode("utf-8"), expected_key) for c in sent])

    def check_key(request: Request) -> None:
        if not key_matches(request):
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

    def searcher(request: Request) -> WebSearcher:
        return request.app.state.searcher  # type: ignore[no-any-return]

    def stopping() -> bool:
        return status().phase is Phase.STOPPING

    async def settle(request: Request, trace: Trace, work: Awaitable[T]) -> T:
        """Await one phase of a chat request; a failure, a vanished client or a stopping server is reported."""
        try:
            return await unless_abandoned(request, work, stopping)
        except ClientGone:
            trace.abandon()
            raise
        except Ki2apiError as error:
            trace.fail(error)
            raise

    def trace_for(request: Request, api: str, chat: ChatRequest) -> Trace:
        return Trace(reporter, api=api, user_agent=request.headers.get("user-agent", ""), chat=chat)

    @app.exception_handler(Ki2apiError)
    async def on_ki2api_error(request: Request, error: Ki2apiError) -> JSONResponse:
        return _error_response(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        missing = exc.status_code == 404
        error = InvalidRequest(
            f"{request.method} {request.url.path}: {exc.detail}",
            code="not_found" if missing else None,
            status=exc.status_code,
            kind="not_found_error" if missing else None,
        )
        return _error_response(request, error)

    @app.exception_handler(ClientGone)
    async def on_client_gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it; 499 is the usual "client closed request"

    @app.exception_handler(RecursionError)
    async def on_recursion(request: Request, exc: RecursionError) -> JSONResponse:
        return _error_response(request, InvalidRequest("The request is nested too deeply to translate."))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error while handling %s %s", request.method, request.url.path)
        error = Ki2apiError("ki2api hit an internal error; details are in its log file.", code="internal_error")
        return _error_response(request, error)

    @app.get("/")
    async def status_page(request: Request) -> HTMLResponse:
        language = page_language(
            settings.language,
            accept_language=request.headers.get("accept-language", ""),
            asked=request.query_params.get("lang", ""),
        )
        page = render_status_page(
            public_status(status()),
            base_url=settings.base_url,
            language=language,
            config_file=scrub(str(settings.app_paths.config_file), Path.home()),
            public_key=settings.api_key if settings.uses_default_key else None,
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "Content-Language": language})

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        body = (status() if key_matches(request) else public_status(status())).as_public_dict()
        if body["status"] == Phase.STARTING.value:  # answering at all means uvicorn is up; the phase catches up
            body["status"] = Phase.RUNNING.value
        return {**body, "version": __version__}

    add_usage_routes(app, usage=usage, check_key=check_key, status=status)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        check_key(request)
        models = public_models(await request.app.state.client.models())
        if "anthropic-version" in request.headers:
            data = [
                {
                    "type": "model",
                    "id": model_id,
                    "display_name": info.display_name or model_id,
                    "created_at": "2025-05-14T00:00:00Z",
                    "lifecycle": "active",
                    "max_input_tokens": info.max_input_tokens,
                    "max_tokens": info.max_output_tokens,
                }
                for model_id, info in models
            ]
            return {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        return openai_model_list(models, created=1_747_180_800)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        check_key(request)
        raw = await read_json(request)
        chat = openai_to_chat(raw)
        trace = trace_for(request, "openai", chat)
        if isinstance(raw, dict) and isinstance(raw.get("web_search_options"), dict):
            # OpenAI's search models take `web_search_options`; here the model gets Kiro's search as a tool.
            work = begin_searching(relay(request), searcher(request), chat, trace)
        else:
            work = begin(relay(request), chat, trace)
        turn, batches, first = await settle(request, trace, work)
        model = answered_by(turn)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not chat.stream:
            events = await settle(request, trace, collect(first, batches))
            trace.finish()
            return SurrogateSafeJSONResponse(
                openai_completion(events, model=model, completion_id=completion_id, created=created)
            )
        options = raw.get("stream_options") if isinstance(raw, dict) else None
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        encoder = OpenAIStreamEncoder(
            model=model, completion_id=completion_id, created=created, include_usage=include_usage
        )

        def encode(batch: list[StreamEvent]) -> bytes:
            return b"".join(format_sse(chunk) for event in batch for chunk in encoder.encode(event))

        opening = b"".join(format_sse(chunk) for chunk in encoder.start())
        return sse_response(
            opening,
            first,
            batches,
            encode=encode,
            error=lambda e: format_sse(openai_error_body(e)),
            keepalive=b": keep-alive\n\n",
            closing=format_sse("[DONE]"),
            outcome=trace,
            stopping=stopping,
        )

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        check_key(request)
        parsed = stored.continued(responses_to_chat(await read_json(request)))
        if parsed.dropped_tools:
            log.info("Responses API: built-in tools Kiro cannot run were left out: %s", ", ".join(parsed.dropped_tools))
        if parsed.skipped_items:
            log.info("Responses API: input items with no Kiro counterpart skipped: %s", ", ".join(parsed.skipped_items))
        chat = parsed.chat
        trace = trace_for(request, "responses", chat)
        if parsed.web_search:
            work = begin_searching(relay(request), searcher(request), chat, trace)
        else:
            work = begin(relay(request), chat, trace)
        turn, batches, first = await settle(request, trace, work)
        response_id = f"resp_{uuid.uuid4().hex}"
        envelope = {
            **parsed.echo,
            "model": answered_by(turn),
            "store": parsed.store,
            "previous_response_id": parsed.previous_response_id,
        }
        encoder = ResponsesEncoder(
            response_id=response_id, created_at=int(time.time()), envelope=envelope, origins=parsed.origins
        )

        def remember() -> None:
            if parsed.store and encoder.finished:
                stored.put(response_id, (*chat.messages, encoder.assistant_message()))

        if not chat.stream:
            events = await settle(request, trace, collect(first, batches))
            trace.finish()
            body = responses_object(encoder, events)
            remember()
            return SurrogateSafeJSONResponse(body)

        def encode(batch: list[StreamEvent]) -> bytes:
            out = b"".join(format_sse(data, name) for event in batch for name, data in encoder.encode(event))
            remember()
            return out

        def failed(error: Ki2apiError) -> bytes:
            return b"".join(format_sse(data, name) for name, data in encoder.fail(error))

        return sse_response(
            b"".join(format_sse(data, name) for name, data in encoder.start()),
            first,
            batches,
            encode=encode,
            error=failed,
            keepalive=b": keep-alive\n\n",
            closing=b"",
            outcome=trace,
            stopping=stopping,
        )

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        check_key(request)
        raw = await read_json(request)
        chat = anthropic_to_chat(raw)
        trace = trace_for(request, "anthropic", chat)
        if anthropic_search_tool(raw) is None:
            turn, batches, first = await settle(request, trace, begin(relay(request), chat, trace))
            input_tokens, model = turn.input_tokens, answered_by(turn)
        elif chat.tools:
            # The server web_search tool beside ordinary ones: the model may search mid-answer.
            work = begin_searching(relay(request), searcher(request), chat, trace)
            turn, batches, first = await settle(request, trace, work)
            input_tokens, model = turn.input_tokens, answered_by(turn)
        else:
            # Only the search tool: Claude Code's WebSearch side query, answered by Kiro's search alone.
            first = await settle(request, trace, search_only(searcher(request), chat))
            batches, input_tokens = as_batches([]), estimate_request_tokens(chat)
            model = chat.model  # no model answered: Kiro's search did
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        if not chat.stream:
            events = await settle(request, trace, collect(first, batches))
            trace.finish()
            body = anthropic_message(events, model=model, message_id=message_id, input_tokens=input_tokens)
            return SurrogateSafeJSONResponse(body)
        encoder = AnthropicStreamEncoder(model=model, message_id=message_id, input_tokens=input_tokens)

        def encode(batch: list[StreamEvent]) -> bytes:
            return b"".join(format_sse(data, name) for event in batch for name, data in encoder.encode(event))

        ping_name, ping_data = AnthropicStreamEncoder.ping()
        return sse_response(
            b"".join(format_sse(data, name) for name, data in encoder.start()),
            first,
            batches,
            encode=encode,
            error=lambda e: format_sse(anthropic_error_body(e), "error"),
            keepalive=format_sse(ping_data, ping_name),
            closing=b"",
            outcome=trace,
            stopping=stopping,
        )

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request) -> dict[str, Any]:
        check_key(request)
        return anthropic_count_tokens(await read_json(request))

    return app


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
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return SurrogateSafeJSONResponse(body, status_code=error.status, headers=headers)

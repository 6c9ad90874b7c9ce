"""KiroClient: every HTTP call to Kiro's API hosts, through one shared httpx.AsyncClient.

Retries (429, 5xx, connection errors) happen only before the first byte of an answer has reached the
client; a 403 "bearer token is invalid" triggers one refresh and one retry. Every failure leaves this
module as a `core.errors` exception whose message a person can act on. Web types never appear here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx

from ..config import Settings
from ..core.errors import (
    ContextLengthExceeded,
    Ki2apiError,
    KiroLoginRequired,
    KiroUnavailable,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from ..core.eventstream import EventStreamDecoder, Frame
from ..core.kiro_request import KiroRequest
from ..core.model import ModelInfo
from ..core.models import STATIC_MODELS, parse_model_list
from ..state import Quota
from .token_refresh import KIRO_IDE_VERSION, machine_id
from .tokens import Credentials, TokenStore

log = logging.getLogger(__name__)

SDK_VERSION = "1.0.34"
NODE_VERSION = "22.21.1"
TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
MODEL_LIST_TTL = 3600.0
MODEL_LIST_RETRY = 60.0  # after a failed lookup, try Kiro again this soon instead of in an hour
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
BEARER_INVALID = "bearer token included in the request is invalid"

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
        """`asyncio.wait_for` without its extra task per call: under load that task cost ~10 µs per Kiro
        chunk and forced a trip through the event loop even when the next chunk was already buffered."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:

    async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, timeout=seconds)


def _os_tag() -> str:
    system = {"Windows": "win32", "Darwin": "darwin"}.get(platform.system(), "linux")
    return f"{system}#{platform.release()}"


class KiroClient:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenStore,
        http: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._http = http
        self._sleep = sleep
        self._machine_id = machine_id()
        self._models: tuple[ModelInfo, ...] = ()
        self._models_at = 0.0
        self._models_lock = asyncio.Lock()

    # --- chat -----------------------------------------------------------------------------------

    async def credentials(self) -> Credentials:
        return await self._tokens.credentials(self._http)

    async def stream(self, request: KiroRequest) -> AsyncIterator[list[Frame]]:
        """Send one chat request and yield the frames of each network chunk as they arrive.

        Retries and the refresh-after-403 happen inside, before anything is yielded; after the first
        yield a failure is raised as is, and the caller turns it into an in-stream error.
        """
        settings = self._settings
        attempts = settings.max_retries + 1
        refreshed = False
        creds = await self.credentials()
        attempt = 0
        while True:
            attempt += 1
            url = f"{settings.runtime_base(creds.region)}/generateAssistantResponse"
            try:
                async with self._open(url, request.body, creds, attempt, attempts) as response:
                    if response.status_code != 200:
                        error = await self._error_from(response)
                        if not refreshed and _is_bearer_rejection(response.status_code, error):
                            refreshed = True
                            log.info("Kiro rejected the access token; refreshing once and retrying")
                            creds = await self._tokens.refresh_after_rejection(self._http, creds)
                            attempt -= 1
                            continue
                        if response.status_code in RETRY_STATUSES and attempt < attempts:
                            await self._backoff(attempt, response, error)
                            continue
                        raise error
                    chunks = response.aiter_raw()
                    first = await self._next_chunk(chunks, settings.first_byte_timeout, first=True)
                    decoder = EventStreamDecoder()
                    chunk: bytes | None = first
                    while chunk is not None:
                        frames = decoder.feed(chunk)
                        if frames:
                            yield frames
                        chunk = await self._next_chunk(chunks, settings.idle_timeout, first=False)
                    decoder.close()
                    return
            except _Retryable as exc:
                if attempt < attempts:
                    log.warning("Kiro request failed (%s); retrying (%d/%d)", exc.error.message, attempt, attempts - 1)
                    await self._sleep(self._delay(attempt))
                    continue
                raise exc.error from exc.__cause__

    @asynccontextmanager
    async def _open(
        self, url: str, body: bytes, creds: Credentials, attempt: int, attempts: int
    ) -> AsyncIterator[httpx.Response]:
        headers = self._chat_headers(creds, attempt, attempts)
        request = self._http.build_request("POST", url, content=body, headers=headers)
        try:
            response = await asyncio.wait_for(
                self._http.send(request, stream=True), timeout=self._settings.first_byte_timeout
            )
        except asyncio.TimeoutError as exc:
            # Not retried: the person already waited the whole timeout once (retries would multiply it).
            raise self._first_byte_timeout() from exc
        except httpx.TransportError as exc:
            raise _Retryable(_unreachable(url, exc)) from exc
        try:
            yield response
        finally:
            await response.aclose()

    async def _next_chunk(self, chunks: AsyncIterator[bytes], timeout: float, *, first: bool) -> bytes | None:
        """The next non-empty network chunk, or None at the end; timeouts become clear errors."""
        while True:
            try:
                chunk = await _within(timeout, chunks.__anext__())
            except StopAsyncIteration:
                return None
            except asyncio.TimeoutError as exc:
                if first:
                    raise self._first_byte_timeout() from exc
                raise UpstreamTimeout(
                    f"Kiro went silent for {timeout:g} s in the middle of the answer, so ki2api ended it. "
                    "Try again; raise KI2API_IDLE_TIMEOUT if long pauses are expected."
                ) from exc
            except httpx.TransportError as exc:
                if first:
                    raise _Retryable(_unreachable("Kiro", exc)) from exc
                raise KiroUnavailable(
                    f"The connection to Kiro broke in the middle of the answer ({type(exc).__name__}). Try again."
                ) from exc
            if chunk:
                return chunk

    def _first_byte_timeout(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"Kiro did not start answering within {self._settings.first_byte_timeout:g} s. "
            "The service may be overloaded; try again, or raise KI2API_FIRST_BYTE_TIMEOUT."
        )

    def _chat_headers(self, creds: Credentials, attempt: int, attempts: int) -> dict[str, str]:
        agent = f"KiroIDE-{KIRO_IDE_VERSION}-{self._machine_id}"
        return {
            "Authorization": f"Bearer {creds.access_token}",
            "Content-Type": "application/x-amz-json-1.0",
            "x-amz-target": TARGET,
            "Accept": "application/vnd.amazon.eventstream",
            "User-Agent": (
                f"aws-sdk-js/{SDK_VERSION} ua/2.1 os/{_os_tag()} lang/js md/nodejs#{NODE_VERSION} "
                f"api/codewhispererstreaming#{SDK_VERSION} m/E {agent}"
            ),
            "x-amz-user-agent": f"aws-sdk-js/{SDK_VERSION} {agent}",
            "x-amzn-codewhisperer-optout": "true",
            "x-amzn-kiro-agent-mode": "vibe",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": f"attempt={attempt}; max={attempts}",
            **creds.extra_headers,
        }

    def _management_headers(self, creds: Credentials) -> dict[str, str]:
        agent = f"KiroIDE-{KIRO_IDE_VERSION}-{self._machine_id}"
        return {
            "Authorization": f"Bearer {creds.access_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"aws-sdk-js/1.0.0 ua/2.1 os/{_os_tag()} lang/js md/nodejs#{NODE_VERSION} m/N,E {agent}",
            "x-amz-user-agent": f"aws-sdk-js/1.0.0 {agent}",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=1",
            **creds.extra_headers,
        }

    async def _error_from(self, response: httpx.Response) -> Ki2apiError:
        raw = await response.aread()
        return error_for_status(response.status_code, raw)

    async def _backoff(self, attempt: int, response: httpx.Response, error: Ki2apiError) -> None:
        delay = self._delay(attempt)
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            delay = min(float(retry_after), 10.0)
        log.warning("Kiro answered %d (%s); retrying in %.1f s", response.status_code, error.message, delay)
        await self._sleep(delay)

    @staticmethod
    def _delay(attempt: int) -> float:
        # 0.25 s doubling, capped at 2 s, plus up to 25% jitter so parallel requests do not retry in step.
        base: float = min(0.25 * 2 ** (attempt - 1), 2.0)
        return base * (1 + random.random() / 4)

    # --- models and quota -------------------------------------------------------------------------

    async def models(self) -> tuple[ModelInfo, ...]:
        """Models this account may use, cached for an hour; the static list (for a minute) when Kiro can't say."""
        if self._models and time.monotonic() - self._models_at < MODEL_LIST_TTL:
            return self._models
        async with self._models_lock:
            if self._models and time.monotonic() - self._models_at < MODEL_LIST_TTL:
                return self._models
            self._models_at = time.monotonic()
            try:
                self._models = await self._fetch_models() or STATIC_MODELS
            except (Ki2apiError, httpx.HTTPError, ValueError) as exc:
                log.warning("could not list Kiro models (%s); using the built-in list", _describe(exc))
                self._models = STATIC_MODELS
                self._models_at -= MODEL_LIST_TTL - MODEL_LIST_RETRY
            return self._models

    async def _fetch_models(self) -> tuple[ModelInfo, ...]:
        creds = await self.credentials()
        url = f"{self._settings.management_base(creds.region)}/ListAvailableModels"
        pages: list[dict[str, Any]] = []
        params = {"origin": "AI_EDITOR", "profileArn": creds.profile_arn}
        for _ in range(20):  # a bound, in case a broken server pages forever
            response = await self._http.get(url, params=params, headers=self._management_headers(creds), timeout=15)
            if response.status_code != 200:
                raise error_for_status(response.status_code, response.content)
            page = response.json()
            pages.append(page)
            next_token = page.get("nextToken") if isinstance(page, dict) else None
            if not next_token:
                break
            params = {**params, "nextToken": str(next_token)}
        return parse_model_list(pages)

    async def quota(self) -> Quota:
        creds = await self.credentials()
        url = f"{self._settings.management_base(creds.region)}/getUsageLimits"
        params = {"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST", "profileArn": creds.profile_arn}
        try:
            response = await self._http.get(url, params=params, headers=self._management_headers(creds), timeout=15)
        except httpx.TransportError as exc:
            raise _unreachable(url, exc) from exc
        if response.status_code != 200:
            raise error_for_status(response.status_code, response.content)
        return parse_quota(response.json())


class _Retryable(Exception):
    """Internal: a failure before any answer arrived, worth another attempt."""

    def __init__(self, error: Ki2apiError) -> None:
        super().__init__(error.message)
        self.error = error


def _unreachable(where: str, exc: Exception) -> KiroUnavailable:
    host = httpx.URL(where).host if where.startswith("http") else where
    return KiroUnavailable(
        f"Could not reach Kiro at {host} ({type(exc).__name__}). Check the internet connection, "
        "or the proxy set in HTTPS_PROXY."
    )


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, Ki2apiError) else type(exc).__name__


def _is_bearer_rejection(status: int, error: Ki2apiError) -> bool:
    return status in (401, 403) and (status == 401 or BEARER_INVALID in error.message.lower())


def error_for_status(status: int, raw: bytes) -> Ki2apiError:
    """Turn a Kiro error response into the exception (and message) the caller will see."""
    message, reason = _parse_error_body(raw)
    said = f"Kiro said: {message}" + (f" ({reason})" if reason else "")
    if status == 400 and (reason == "CONTENT_LENGTH_EXCEEDS_THRESHOLD" or "too long" in message.lower()):
        return ContextLengthExceeded(
            "The conversation is too long for the model's context window. Compact or shorten it, "
            f"or start a new conversation. {said}",
            upstream_status=status,
            reason=reason,
        )
    if status == 400 and reason == "INVALID_MODEL_ID":
        return UpstreamError(
            f"Kiro does not offer this model to your account (check your Kiro plan). {said}",
            upstream_status=status,
            reason=reason,
            code="model_not_found",
            status=400,
            kind="invalid_request_error",
        )
    if status == 402 or reason == "MONTHLY_REQUEST_COUNT":
        return QuotaExceeded(
            f"Your Kiro quota is used up for this month; it resets at the start of the next period. {said}",
            upstream_status=status,
            reason=reason,
        )
    if status == 429:
        return RateLimited(
            f"Kiro is busy or rate-limiting requests; try again shortly. {said}", upstream_status=status, reason=reason
        )
    if status in (401, 403):
        if status == 401 or BEARER_INVALID in message.lower():
            return KiroLoginRequired(f"Kiro rejected the token even after a refresh: log in to Kiro again. {said}")
        return UpstreamError(
            f"Kiro refused the request. {said}",
            upstream_status=status,
            reason=reason,
            code="kiro_forbidden",
            status=403,
            kind="permission_error",
        )
    if status == 400:
        return UpstreamError(
            f"Kiro rejected the request. {said} If this repeats, please report it with the ki2api log file.",
            upstream_status=status,
            reason=reason,
            code="kiro_rejected_request",
            status=400,
            kind="invalid_request_error",
        )
    if status >= 500 or status == 408:
        return KiroUnavailable(f"Kiro is having trouble (HTTP {status}); try again in a moment. {said}")
    return UpstreamError(f"Kiro answered HTTP {status}. {said}", upstream_status=status, reason=reason)


def _parse_error_body(raw: bytes) -> tuple[str, str | None]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        text = raw.decode("utf-8", "replace").strip()
        return (text[:300] or "no details"), None
    if not isinstance(data, dict):
        return str(data)[:300], None
    error = data.get("error")
    nested: dict[str, Any] = error if isinstance(error, dict) else {}
    message = data.get("message") or data.get("Message") or nested.get("message") or data.get("error_description")
    reason = data.get("reason") or nested.get("reason")
    if not message and isinstance(data.get("error"), str):
        message = data["error"]
    return str(message or "no details")[:500], (str(reason) if reason else None)


def parse_quota(body: Any) -> Quota:
    """getUsageLimits -> remaining credits (kiro-protocol.md §7): base + active trial + active bonuses."""
    if not isinstance(body, dict):
        return Quota()
    breakdowns = [b for b in body.get("usageBreakdownList") or [] if isinstance(b, dict)]
    first = breakdowns[0] if breakdowns else {}
    limit = _number(first, "usageLimitWithPrecision", "usageLimit")
    used = _number(first, "currentUsageWithPrecision", "currentUsage")
    trial = first.get("freeTrialInfo")
    if isinstance(trial, dict) and trial.get("freeTrialStatus") == "ACTIVE":
        limit += _number(trial, "usageLimitWithPrecision", "usageLimit")
        used += _number(trial, "currentUsageWithPrecision", "currentUsage")
    for bonus in first.get("bonuses") or []:
        if isinstance(bonus, dict) and bonus.get("status") == "ACTIVE":
            limit += _number(bonus, "usageLimitWithPrecision", "usageLimit")
            used += _number(bonus, "currentUsageWithPrecision", "currentUsage")
    reset = first.get("nextDateReset") or body.get("nextDateReset")
    resets_at = None
    if isinstance(reset, (int, float)) and reset > 0:
        resets_at = datetime.fromtimestamp(float(reset), tz=timezone.utc)
    info = body.get("subscriptionInfo")
    subscription = str(info.get("subscriptionTitle", "")) if isinstance(info, dict) else ""
    return Quota(subscription=subscription, used=used, limit=limit, resets_at=resets_at)


def _number(data: dict[str, Any], *keys: str) -> float:
    for key in keys:
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 0.0

"""KiroClient: every HTTP call to Kiro's API hosts, through one shared httpx.AsyncClient.

Chat goes to the hosts `hosts.chat_hosts` names for the login, falling through only on the answers
kiro-protocol-2026.md §1.3 lists. Retries (429, 5xx, connection errors) stay on one host and happen only
before the first byte has reached the client. A refresh happens only when every host said the bearer was
invalid and the login can be renewed; `403 User is not authorized` first re-checks the profile. Kiro's
account signals (§7) block the login. Every failure leaves as a `core.errors` exception whose message a
person can act on. Web types never appear here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx

from ..config import Settings
from ..core.errors import Ki2apiError, KiroUnavailable, UpstreamTimeout
from ..core.eventstream import EventStreamDecoder, Frame
from ..core.kiro_request import KiroRequest
from ..core.model import ModelInfo
from ..core.models import STATIC_MODELS, parse_model_list
from ..state import Quota
from .account_block import COOLDOWN, EXHAUSTED, SUSPENDED, Block, next_month, signal_of, support_url_in
from .answers import Said, error_for_status, parse_quota, said_from
from .control_plane import json_operation, os_tag, rest_get
from .hosts import Host, chat_hosts, falls_through
from .login_kind import mask_arn, uses_runtime_host
from .token_refresh import KIRO_IDE_VERSION, machine_id
from .tokens import Credentials, TokenStore

log = logging.getLogger(__name__)

SDK_VERSION = "1.0.34"
NODE_VERSION = "22.21.1"
TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
MODEL_LIST_TTL = 3600.0
MODEL_LIST_RETRY = 60.0  # after a failed lookup, try Kiro again this soon instead of in an hour
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

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
        self._models_of: tuple[str, ...] | None = None  # the login the cached catalog belongs to
        self._models_lock = asyncio.Lock()
        self._resets_at: datetime | None = None  # from the last quota read: when used-up credits return
        self._routed: set[tuple[str, ...]] = set()  # logins whose route was logged once

    # --- chat -----------------------------------------------------------------------------------

    async def credentials(self) -> Credentials:
        return await self._tokens.credentials(self._http)

    async def stream(self, request: KiroRequest) -> AsyncIterator[list[Frame]]:
        """Send one chat request and yield the frames of each network chunk as they arrive.

        Host fall-through, retries, the refresh and the profile re-check happen inside, before anything is
        yielded; after the first yield a failure is raised as is, and the caller turns it into an in-stream
        error.
        """
        creds = await self.credentials()
        body = request.body
        refreshed = rechecked = False
        while True:
            hosts = chat_hosts(self._settings, creds.auth_kind, creds.region)
            self._log_route(creds, hosts)
            answers: list[tuple[Host, Said]] = []
            for index, host in enumerate(hosts):
                async with AsyncExitStack() as stack:
                    response = await self._answer(stack, f"{host.base}/generateAssistantResponse", body, creds)
                    if response.status_code == 200:
                        if index:
                            log.info("Kiro's %s host answered for the %s login", host.family, creds.label)
                        async for frames in self._frames(response):
                            yield frames
                        return
                    said = said_from(response.status_code, await response.aread())
                answers.append((host, said))
                last = index == len(hosts) - 1
                if signal_of(said.status, said.message, said.reason, said.error_type) or last:
                    break
                if not falls_through(said.status, said.message):
                    break
                log.info(
                    "Kiro's %s host answered %d for the %s login (%s); trying the %s host",
                    host.family,
                    said.status,
                    creds.label,
                    said.message[:120],
                    hosts[index + 1].family,
                )
            said = self._meaningful(answers)
            if all(s.bearer_rejected for _, s in answers) and not refreshed:
                refreshed = True
                log.info("Kiro rejected the access token; refreshing once and retrying")
                creds = await self._tokens.refresh_after_rejection(self._http, creds)
                continue
            if said.not_authorized and not rechecked:
                rechecked = True
                renewed = await self._tokens.recheck_profile(self._http, creds)
                if renewed is not None:
                    creds, body = renewed, with_profile_arn(body, renewed.profile_arn)
                    continue
            raise self._failure(said, creds)

    def _log_route(self, creds: Credentials, hosts: tuple[Host, ...]) -> None:
        """Say once per login which path ki2api took where the sources disagree (kiro-protocol-2026.md §9)."""
        if creds.identity in self._routed:
            return
        self._routed.add(creds.identity)
        log.info(
            "Chat for the %s login goes to %s (region %s, host_order=%s); profile ARN %s",
            creds.label,
            " then ".join(f"the {h.family} host" for h in hosts),
            creds.region,
            self._settings.host_order,
            f"{mask_arn(creds.profile_arn)} (from {creds.arn_from})" if creds.profile_arn else "not sent",
        )

    @staticmethod
    def _meaningful(answers: list[tuple[Host, Said]]) -> Said:
        # A host that does not take this login says "bearer invalid"; the other host's answer says more.
        return next((s for _, s in answers if not s.bearer_rejected), answers[-1][1])

    async def _answer(self, stack: AsyncExitStack, url: str, body: bytes, creds: Credentials) -> httpx.Response:
        """One host's answer (any status), after retrying 429/5xx/connection errors on that same host."""
        attempts = self._settings.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                async with AsyncExitStack() as inner:
                    response = await inner.enter_async_context(self._open(url, body, creds, attempt, attempts))
                    if response.status_code in RETRY_STATUSES and attempt < attempts:
                        said = said_from(response.status_code, await response.aread())
                        if signal_of(said.status, said.message, said.reason, said.error_type) is None:
                            await self._backoff(attempt, response, said)
                            continue
                        # An account signal: not retried. The body was read already; pass it on as an answer.
                        return httpx.Response(said.status, content=said.raw)
                    stack.push_async_exit(inner.pop_all())
                    return response
            except _Retryable as exc:
                if attempt < attempts:
                    log.warning("Kiro request failed (%s); retrying (%d/%d)", exc.error.message, attempt, attempts - 1)
                    await self._sleep(self._delay(attempt))
                    continue
                raise exc.error from exc.__cause__

    async def _frames(self, response: httpx.Response) -> AsyncIterator[list[Frame]]:
        settings = self._settings
        chunks = response.aiter_raw()
        try:
            chunk: bytes | None = await self._next_chunk(chunks, settings.first_byte_timeout, first=True)
        except _Retryable as exc:
            raise exc.error from exc.__cause__
        decoder = EventStreamDecoder()
        while chunk is not None:
            frames = decoder.feed(chunk)
            if frames:
                yield frames
            chunk = await self._next_chunk(chunks, settings.idle_timeout, first=False)
        decoder.close()

    def _failure(self, said: Said, creds: Credentials) -> Ki2apiError:
        """The caller's error for Kiro's answer; an account signal (§7) also blocks the login."""
        signal = signal_of(said.status, said.message, said.reason, said.error_type)
        if signal is None:
            return error_for_status(said.status, said.raw)
        now = datetime.now(timezone.utc)
        if signal == SUSPENDED:
            block = Block(SUSPENDED, said.message, None, support_url_in(said.message))
        elif signal == EXHAUSTED:
            until = self._resets_at if self._resets_at and self._resets_at > now else next_month(now)
            block = Block(EXHAUSTED, said.message, until)
        else:
            block = Block(COOLDOWN, said.message, now + timedelta(seconds=self._settings.suspicious_cooldown))
        self._tokens.block(creds, block)
        return block.error(now)

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
                f"aws-sdk-js/{SDK_VERSION} ua/2.1 os/{os_tag()} lang/js md/nodejs#{NODE_VERSION} "
                f"api/codewhispererstreaming#{SDK_VERSION} m/E {agent}"
            ),
            "x-amz-user-agent": f"aws-sdk-js/{SDK_VERSION} {agent}",
            "x-amzn-codewhisperer-optout": "true",
            "x-amzn-kiro-agent-mode": "vibe",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": f"attempt={attempt}; max={attempts}",
            **creds.extra_headers,
        }

    async def _backoff(self, attempt: int, response: httpx.Response, said: Said) -> None:
        delay = self._delay(attempt)
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            delay = min(float(retry_after), 10.0)
        log.warning("Kiro answered %d (%s); retrying in %.1f s", response.status_code, said.message[:200], delay)
        await self._sleep(delay)

    @staticmethod
    def _delay(attempt: int) -> float:
        # 0.25 s doubling, capped at 2 s, plus up to 25% jitter so parallel requests do not retry in step.
        base: float = min(0.25 * 2 ** (attempt - 1), 2.0)
        return base * (1 + random.random() / 4)

    # --- models and quota (the control plane that matches the login, 2026 §1.4) -------------------

    async def models(self) -> tuple[ModelInfo, ...]:
        """This login's models, cached for an hour; the static list (for a minute) when Kiro can't say.

        The catalog is per account and profile (2026 §1.4), so another login starts a fresh one.
        """
        identity = self._tokens_identity()
        fresh = self._models_of == identity and time.monotonic() - self._models_at < MODEL_LIST_TTL
        if self._models and fresh:
            return self._models
        async with self._models_lock:
            identity = self._tokens_identity()
            if self._models and self._models_of == identity and time.monotonic() - self._models_at < MODEL_LIST_TTL:
                return self._models
            self._models_at = time.monotonic()
            self._models_of = identity
            try:
                self._models = await self._fetch_models() or STATIC_MODELS
            except (Ki2apiError, httpx.HTTPError, ValueError) as exc:
                log.warning("could not list Kiro models (%s); using the built-in list", _describe(exc))
                self._models = STATIC_MODELS
                self._models_at -= MODEL_LIST_TTL - MODEL_LIST_RETRY
            return self._models

    def _tokens_identity(self) -> tuple[str, ...] | None:
        return self._tokens.identity()

    def _on_aws_surface(self, creds: Credentials) -> bool:
        return not uses_runtime_host(creds.auth_kind) or self._settings.host_order == "aws_first"

    async def _control(self, creds: Credentials, operation: str, rest_path: str, params: dict[str, str]) -> Any:
        """One control-plane call in the login's wire form; the parsed JSON, or the caller's error."""
        arn = {"profileArn": creds.profile_arn} if creds.profile_arn else {}
        if self._on_aws_surface(creds):
            base = self._settings.q_base(creds.region)
            query = {"origin": params["origin"], **({"isEmailRequired": "true"} if "isEmailRequired" in params else {})}
            body = {**{k: v for k, v in params.items() if k != "isEmailRequired"}, **arn}
            try:
                response = await json_operation(
                    self._http, base, operation, body, creds.access_token, creds.extra_headers, {**query, **arn}
                )
            except httpx.TransportError as exc:
                raise _unreachable(base, exc) from exc
        else:
            base = self._settings.management_base(creds.region)
            try:
                response = await rest_get(
                    self._http, base, rest_path, {**params, **arn}, creds.access_token, creds.extra_headers
                )
            except httpx.TransportError as exc:
                raise _unreachable(base, exc) from exc
        if response.status_code != 200:
            raise self._failure(said_from(response.status_code, response.content), creds)
        return response.json()

    async def _fetch_models(self) -> tuple[ModelInfo, ...]:
        creds = await self.credentials()
        pages: list[dict[str, Any]] = []
        params = {"origin": "AI_EDITOR"}
        for _ in range(20):  # a bound, in case a broken server pages forever
            page = await self._control(creds, "ListAvailableModels", "ListAvailableModels", params)
            pages.append(page)
            next_token = page.get("nextToken") if isinstance(page, dict) else None
            if not next_token:
                break
            params = {**params, "nextToken": str(next_token)}
        models = parse_model_list(pages)
        log.info(
            "Kiro offers %d models to the %s login (profile %s)",
            len(models),
            creds.label,
            mask_arn(creds.profile_arn) or "none",
        )
        return models

    async def quota(self) -> Quota:
        creds = await self.credentials()
        params = {"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST", "isEmailRequired": "true"}
        quota = parse_quota(await self._control(creds, "GetUsageLimits", "getUsageLimits", params))
        self._resets_at = quota.resets_at
        return quota


def with_profile_arn(body: bytes, arn: str | None) -> bytes:
    """The same request for another profile: only the top-level `profileArn` changes."""
    data = json.loads(body)
    data.pop("profileArn", None)
    if arn:
        data["profileArn"] = arn
    return json.dumps(data, separators=(",", ":")).encode("ascii")


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

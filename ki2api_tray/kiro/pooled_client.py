"""PooledClient: one `KiroClient` per account of the pool, and failover between them.

A request moves to the next account only while nothing has reached the client, and only for what makes an
account unusable: its login cannot be renewed, or Kiro suspended it, used up its credits or cooled it down
(kiro-protocol-2026.md §7). Once Kiro has started answering, a failure is the caller's, never retried on
another account. With one account every error passes through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import datetime, timezone

import httpx

from ..core.errors import AccountSuspended, Ki2apiError, KiroLoginRequired, QuotaExceeded, RateLimited
from ..core.eventstream import Frame
from ..core.kiro_request import KiroRequest
from ..core.model import ModelInfo
from ..state import Quota, Reporter, RequestRecord, TokenStatus
from .account_block import COOLDOWN, EXHAUSTED
from .account_pool import Account, AccountPool
from .keeper import keep_fresh
from .tokens import Credentials
from .upstream import KiroClient, with_profile_arn

log = logging.getLogger(__name__)


class PooledClient:
    def __init__(self, pool: AccountPool, http: httpx.AsyncClient, reporter: Reporter) -> None:
        self._pool = pool
        self._http = http
        self._reporter = reporter
        self._clients = {a.name: KiroClient(pool.settings, a.tokens, http) for a in pool.accounts}

    @property
    def reporter(self) -> Reporter:
        return self._reporter

    def current_name(self) -> str:
        return self._pool.current().name

    def client(self, account: Account) -> KiroClient:
        return self._clients[account.name]

    # --- what the relay needs ------------------------------------------------------------------------

    async def models(self) -> tuple[ModelInfo, ...]:
        return await self.client(self._pool.current()).models()

    async def credentials(self) -> Credentials:
        """The credentials of the first account that has usable ones (the request is built with its ARN)."""
        failures: list[tuple[Account, Ki2apiError]] = []
        for account in self._pool.order(""):
            try:
                return await self.client(account).credentials()
            except Ki2apiError as error:
                if not self._moves_on(account, error):
                    raise
                failures.append((account, error))
        raise self._none_left(failures)

    async def stream(self, request: KiroRequest) -> AsyncGenerator[list[Frame], None]:
        failures: list[tuple[Account, Ki2apiError]] = []
        started = False
        for account in self._pool.order(request.affinity):
            client = self.client(account)
            if self._pool.pooled:
                await account.pacer.wait()
            try:
                creds = await client.credentials()
                sent = request
                if creds.profile_arn != request.profile_arn:
                    body = with_profile_arn(request.body, creds.profile_arn)
                    sent = replace(request, body=body, profile_arn=creds.profile_arn)
                frames_of = client.stream(sent)
                async with contextlib.aclosing(frames_of) as frames:  # type: ignore[type-var]
                    try:
                        first = await frames.__anext__()
                    except StopAsyncIteration:
                        self._pool.served(account, request.affinity)
                        return
                    self._pool.served(account, request.affinity)
                    started = True  # from here on a failure is the caller's: no other account may retry it
                    yield first
                    async for more in frames:
                        yield more
                    return
            except Ki2apiError as error:
                if started or not self._moves_on(account, error):
                    raise
                failures.append((account, error))
                if self._pool.pooled:
                    log.warning("Kiro account %s cannot answer now (%s); trying the next", account.name, error.code)
        raise self._none_left(failures)

    # --- background upkeep ---------------------------------------------------------------------------

    async def keep_fresh(self) -> None:
        """Each account's own upkeep (token renewal, quota reads), side by side."""
        tasks = [
            asyncio.create_task(keep_fresh(a.tokens, self.client(a), self._http, _AccountReporter(self, a.name)))
            for a in self._pool.accounts
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    def quota_changed(self, name: str, quota: Quota) -> None:
        self._pool.quota_changed(name, quota)
        if self._pool.current().name == name:
            self._reporter.quota_changed(quota)

    # --- failover ------------------------------------------------------------------------------------

    def _moves_on(self, account: Account, error: Ki2apiError) -> bool:
        """Whether another account may take this request: the account itself is unusable, not the request."""
        return isinstance(error, KiroLoginRequired) or account.tokens.blocked() is not None

    def _none_left(self, failures: list[tuple[Account, Ki2apiError]]) -> Ki2apiError:
        """The error when no account can answer: with one account its own; with several, all of them named,
        as a 402 (with the earliest return) when any is out of credits."""
        if len(failures) == 1 and not self._pool.pooled:
            return failures[0][1]
        if not failures:
            return KiroLoginRequired("No Kiro account is configured: sign in to Kiro, or add accounts to config.json")
        now = datetime.now(timezone.utc)
        reasons, returns, kinds = [], [], set()
        for account, error in failures:
            block = account.tokens.blocked()
            kinds.add(block.kind if block is not None else type(error).__name__)
            if block is not None and block.until is not None:
                returns.append((block.until, account.name))
            reasons.append(f"{account.name}: {error.message}")
        summary = f"None of the {len(failures)} Kiro accounts can answer now."
        if returns:
            until, name = min(returns)
            summary += f" The first to come back is {name}, {_when(until, now)}."
        message = f"{summary} " + " | ".join(reasons)
        if EXHAUSTED in kinds:
            return QuotaExceeded(message)
        if COOLDOWN in kinds:
            return RateLimited(message)
        first = failures[0][1]
        if isinstance(first, AccountSuspended):
            return AccountSuspended(message)
        return KiroLoginRequired(message) if isinstance(first, KiroLoginRequired) else type(first)(message)


class _AccountReporter:
    """The `Reporter` one account's upkeep talks to: quota per account; the rest is the pool's business."""

    def __init__(self, client: PooledClient, name: str) -> None:
        self._client = client
        self._name = name

    def request_finished(self, ok: bool, error: str = "", record: RequestRecord | None = None) -> None:
        pass

    def quota_failed(self, error: str) -> None:
        if self._client.current_name() == self._name:
            self._client.reporter.quota_failed(error)

    def quota_changed(self, quota: Quota) -> None:
        self._client.quota_changed(self._name, quota)

    def token_changed(self, status: TokenStatus) -> None:
        pass


def _when(until: datetime, now: datetime) -> str:
    minutes = int((until - now).total_seconds() // 60)
    if minutes < 120:
        return f"in {max(1, minutes)} min"
    return f"on {until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"

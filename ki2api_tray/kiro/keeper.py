"""Background upkeep while the server runs: keep the token fresh and the quota figure current.

Kiro only refreshes its token while one of its windows is focused, so an idle ki2api must refresh by
itself or the token would be expired when the next request comes in.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from ..core.errors import Ki2apiError
from ..state import Reporter, TokenHealth
from .tokens import TokenStore
from .upstream import KiroClient

log = logging.getLogger(__name__)

TOKEN_CHECK_SECONDS = 60.0
QUOTA_EVERY_SECONDS = 15 * 60.0
FIRST_QUOTA_DELAY = 2.0
# REFRESH_FAILED too: after a network failure the store retries (it never re-sends a refused token).
USABLE = (TokenHealth.VALID, TokenHealth.EXPIRING, TokenHealth.EXPIRED, TokenHealth.REFRESH_FAILED)


async def keep_fresh(tokens: TokenStore, client: KiroClient, http: httpx.AsyncClient, reporter: Reporter) -> None:
    await asyncio.sleep(FIRST_QUOTA_DELAY)
    since_quota = QUOTA_EVERY_SECONDS
    while True:
        if tokens.blocked() is not None:
            # Suspended, out of credits or cooling down (kiro-protocol-2026.md §7): no call to Kiro at all.
            await asyncio.sleep(TOKEN_CHECK_SECONDS)
            since_quota += TOKEN_CHECK_SECONDS
            continue
        if tokens.status().health in USABLE:
            try:
                await tokens.credentials(http)  # refreshes only when fewer than ~5 minutes are left
            except Ki2apiError as error:
                log.warning("background token refresh failed: %s", error.message)
        if since_quota >= QUOTA_EVERY_SECONDS and tokens.status().health in USABLE:
            since_quota = 0.0
            try:
                reporter.quota_changed(await client.quota())
            except Ki2apiError as error:
                log.info("could not read the Kiro quota: %s", error.message)
                reporter.quota_failed(f"Could not read the Kiro quota: {error.message}")
            except (httpx.HTTPError, ValueError) as exc:
                log.info("could not read the Kiro quota (%s)", type(exc).__name__)
                reporter.quota_failed(f"Could not read the Kiro quota ({type(exc).__name__}).")
        await asyncio.sleep(TOKEN_CHECK_SECONDS)
        since_quota += TOKEN_CHECK_SECONDS

"""How healthy a Kiro login is right now, as the status the tray, `/health` and `ki2api-tray status` show.

Pure: a function of the login, the last refresh failure and the clock. It looks at a token only to see
whether it is empty, so no detail can ever contain one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..state import TokenHealth, TokenStatus
from .account_block import EXHAUSTED, SUSPENDED, Block
from .login_kind import can_refresh, login_label, mask_arn
from .token_file import TokenRecord


def span(delta: timedelta) -> str:
    """A duration the way a person says it: "less than a minute", "47 min", "3 h 5 min", "4 days"."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


def token_status(
    record: TokenRecord | None,
    *,
    where: str,
    now: datetime,
    margin: timedelta,
    problem: str | None = None,
    failure: str | None = None,
    block: Block | None = None,
    profile_arn: str | None = None,
    note: str = "",
) -> TokenStatus:
    """The health of `record` at `now`.

    `where` is the source that was looked at (a path or variable), `problem` why it holds no usable login,
    `failure` the message of a refresh that did not work, `block` a §7 account signal still in force.
    """
    if record is None:
        if problem is not None:
            detail = f"{problem}: fix it, or sign in to Kiro again"
            return TokenStatus(TokenHealth.UNREADABLE, source=where, detail=detail, note=note)
        return TokenStatus(
            TokenHealth.MISSING,
            source=where,
            detail=f"No Kiro login found in {where}: open Kiro and sign in, run kiro-cli login, or set KIRO_API_KEY",
            note=note,
        )
    source = str(record.source) if record.source is not None else where

    def status(health: TokenHealth, detail: str) -> TokenStatus:
        return TokenStatus(
            health,
            record.expires_at,
            record.auth_kind,
            source,
            detail,
            can_refresh(record),
            login=login_label(record),
            profile_arn=mask_arn(profile_arn),
            note=note,
            support_url=block.support_url if block is not None else "",
            blocked_until=block.until if block is not None else None,
        )

    if block is not None and block.active(now):
        health = {SUSPENDED: TokenHealth.SUSPENDED, EXHAUSTED: TokenHealth.EXHAUSTED}.get(
            block.kind, TokenHealth.COOLDOWN
        )
        return status(health, block.message)
    if failure is not None:
        return status(TokenHealth.REFRESH_FAILED, failure)
    if record.auth_kind == "api_key":
        return status(TokenHealth.VALID, "a Kiro API key: it does not expire and needs no refresh")
    if not record.access_token:
        return status(TokenHealth.EXPIRED, "no access token yet; one is fetched on the next request")
    if record.expires_at is None:
        return status(TokenHealth.VALID, "expiry unknown")
    left = record.expires_at - now
    if left <= timedelta(0):
        if not record.refresh_token:
            return status(TokenHealth.EXPIRED, f"expired {span(-left)} ago: log in to Kiro again")
        return status(TokenHealth.EXPIRED, f"expired {span(-left)} ago; renewed on the next request")
    if left < margin:
        return status(TokenHealth.EXPIRING, f"expires in {span(left)}; renewed on the next request")
    return status(TokenHealth.VALID, f"expires in {span(left)}")

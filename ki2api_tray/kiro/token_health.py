"""How healthy a Kiro login is right now, as the status the tray, `/health` and `ki2api-tray status` show.

Pure: a function of the login, the last refresh failure and the clock. It looks at a token only to see
whether it is empty, so no detail can ever contain one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from ..state import TokenHealth, TokenStatus
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
    token_file: Path,
    now: datetime,
    margin: timedelta,
    unreadable: bool = False,
    failure: str | None = None,
) -> TokenStatus:
    """The health of `record` at `now`; `failure` is the message of a refresh that did not work."""
    path = str(token_file)
    if record is None:
        if unreadable:
            detail = f"{path} is not a readable Kiro token: open Kiro and sign in again"
            return TokenStatus(TokenHealth.UNREADABLE, source=path, detail=detail)
        return TokenStatus(
            TokenHealth.MISSING, source=path, detail=f"No Kiro login found at {path}: open Kiro and sign in"
        )
    source = path if record.source is not None else "environment"

    def status(health: TokenHealth, detail: str) -> TokenStatus:
        return TokenStatus(health, record.expires_at, record.auth_kind, source, detail, bool(record.refresh_token))

    if failure is not None:
        return status(TokenHealth.REFRESH_FAILED, failure)
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

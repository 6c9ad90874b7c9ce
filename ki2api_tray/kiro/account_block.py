"""Kiro's account-safety and quota signals (kiro-protocol-2026.md §7): recognising them in an error answer,
and the block they put on a login until a person (suspension), the calendar (used-up credits) or the clock
(suspicious-activity cooldown) lifts it.

Pure: no I/O. `TokenStore` keeps the current `Block`; `KiroClient` classifies answers with `signal_of`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..core.errors import AccountSuspended, Ki2apiError, QuotaExceeded, RateLimited
from ..state import KIRO_SUPPORT_URL

SUSPENDED = "suspended"
EXHAUSTED = "exhausted"
COOLDOWN = "cooldown"
QUOTA_REASONS = frozenset({"MONTHLY_REQUEST_COUNT", "OVERAGE_REQUEST_LIMIT_EXCEEDED"})
_URL = re.compile(r"https://[^\s\"'<>)]+")


@dataclass(frozen=True)
class Block:
    """Why a login may not be used right now; `message` is Kiro's own words where Kiro gave some."""

    kind: str  # SUSPENDED | EXHAUSTED | COOLDOWN
    message: str
    until: datetime | None = None  # None: until a person acts (suspension) or the reset is unknown
    support_url: str = ""

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def error(self, now: datetime) -> Ki2apiError:
        """The error a request gets while the block lasts, without asking Kiro again."""
        if self.kind == SUSPENDED:
            return AccountSuspended(
                f"Kiro suspended this account, so ki2api stopped using it (no retries, no refresh). "
                f"Kiro said: {self.message} Contact Kiro support to restore access: {self.support_url}"
            )
        when = _when(self.until, now)
        if self.kind == EXHAUSTED:
            return QuotaExceeded(
                f"Your Kiro quota (credits) is used up{when}; ki2api will not send requests until it resets. "
                f"Kiro said: {self.message}"
            )
        return RateLimited(
            f"Kiro limited this account after suspicious activity; ki2api pauses it{when} instead of retrying. "
            f"Kiro said: {self.message}"
        )


def _when(until: datetime | None, now: datetime) -> str:
    if until is None:
        return ""
    minutes = max(1, int((until - now).total_seconds() // 60))
    if minutes < 120:
        return f" for {minutes} min"
    return f" until {until.astimezone(timezone.utc):%Y-%m-%d}"


def signal_of(status: int, message: str, reason: str | None, error_type: str | None) -> str | None:
    """SUSPENDED / EXHAUSTED / COOLDOWN when Kiro's answer is one of §7's signals, else None."""
    text = message.lower()
    if status == 403 and (("suspended" in text and "locked your account" in text) or reason == "TEMPORARILY_SUSPENDED"):
        return SUSPENDED
    if status == 403 and "unusual user activity" in text and "locked" in text:
        return SUSPENDED
    # §7 / §9.9: overage exhaustion arrives as 402 (KRS-Z, KGO) or as 400 ServiceQuotaExceededException.
    if status == 402 or reason in QUOTA_REASONS or "servicequotaexceeded" in (error_type or "").lower():
        return EXHAUSTED
    if status == 429 and "suspicious activity" in text:
        return COOLDOWN
    return None


def support_url_in(message: str) -> str:
    """The support link Kiro put in a suspension message, else Kiro's support page."""
    match = _URL.search(message)
    return match.group(0).rstrip(".,;") if match else KIRO_SUPPORT_URL


def next_month(now: datetime) -> datetime:
    """The first of next month, UTC: when Kiro's monthly credits reset if nothing better is known."""
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)

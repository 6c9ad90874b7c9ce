"""What Kiro's answers mean: error bodies as the caller's exceptions, and getUsageLimits as a Quota.

Pure apart from the exception types; `KiroClient` calls these for every non-200 answer and quota read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..core.errors import (
    ContextLengthExceeded,
    Ki2apiError,
    KiroLoginRequired,
    KiroUnavailable,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
)
from ..state import Quota

BEARER_INVALID = "bearer token included in the request is invalid"


@dataclass(frozen=True)
class Said:
    """One error answer from Kiro: status, its own message, `reason` and AWS `__type` (never a token)."""

    status: int
    message: str
    reason: str | None
    error_type: str | None
    raw: bytes

    @property
    def bearer_rejected(self) -> bool:
        return self.status == 401 or (self.status == 403 and BEARER_INVALID in self.message.lower())

    @property
    def not_authorized(self) -> bool:
        """`403 User is not authorized to make this call`: usually a missing or wrong ARN (2026 §2.3)."""
        return self.status == 403 and "not authorized to make this call" in self.message.lower()


def said_from(status: int, raw: bytes) -> Said:
    message, reason, error_type = _parse_error_body(raw)
    return Said(status, message, reason, error_type, raw)


def error_for_status(status: int, raw: bytes) -> Ki2apiError:
    """Turn a Kiro error response into the exception (and message) the caller will see."""
    message, reason, _ = _parse_error_body(raw)
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


def _parse_error_body(raw: bytes) -> tuple[str, str | None, str | None]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        text = raw.decode("utf-8", "replace").strip()
        return (text[:300] or "no details"), None, None
    if not isinstance(data, dict):
        return str(data)[:300], None, None
    error = data.get("error")
    nested: dict[str, Any] = error if isinstance(error, dict) else {}
    message = data.get("message") or data.get("Message") or nested.get("message") or data.get("error_description")
    reason = data.get("reason") or nested.get("reason")
    if not message and isinstance(data.get("error"), str):
        message = data["error"]
    error_type = data.get("__type") or nested.get("__type")
    return (
        str(message or "no details")[:500],
        (str(reason) if reason else None),
        (str(error_type) if error_type else None),
    )


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
    overage = body.get("overageConfiguration")
    overage_status = overage.get("overageStatus") if isinstance(overage, dict) else None
    return Quota(
        subscription=subscription,
        used=used,
        limit=limit,
        resets_at=resets_at,
        overage=overage_status if isinstance(overage_status, str) else "",
    )


def _number(data: dict[str, Any], *keys: str) -> float:
    for key in keys:
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 0.0

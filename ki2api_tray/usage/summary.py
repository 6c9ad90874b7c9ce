"""The JSON behind `GET /api/usage` and `GET /api/requests` (design.md §3), built from the usage store.

Days are local dates, listed oldest first and without gaps, so a chart can draw them as they come.
The runway forecast divides what is left of the plan by this week's pace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..state import Quota, RequestRecord
from .store import StoredRequest, Tally, UsageStore

PACE_DAYS = 7


@dataclass(frozen=True)
class Forecast:
    """How long the plan's credits last at this week's pace; `runs_out` is None when nothing is being spent."""

    pace_per_day: float
    remaining: float
    runs_out: date | None
    resets: date | None

    @property
    def lasts_until_reset(self) -> bool:
        return self.runs_out is None or (self.resets is not None and self.runs_out >= self.resets)


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def forecast(quota: Quota | None, week_credits: float, now: datetime) -> Forecast | None:
    if quota is None or quota.limit <= 0:
        return None
    pace = week_credits / PACE_DAYS
    resets = quota.resets_at.astimezone().date() if quota.resets_at else None
    runs_out = None
    if pace > 0:
        days = quota.remaining / pace
        runs_out = (now + timedelta(days=min(days, 3650))).date()
    return Forecast(pace_per_day=pace, remaining=quota.remaining, runs_out=runs_out, resets=resets)


def tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "requests": tally.requests,
        "errors": tally.errors,
        "credits": round(tally.credits, 4),
        "input_tokens": tally.input_tokens,
        "output_tokens": tally.output_tokens,
    }


def usage_json(store: UsageStore | None, *, days: int, now: datetime, quota: Quota | None) -> dict[str, Any]:
    """Totals, per model, per client and per day over the last `days` local days (today included).

    Without a store (history switched off) every count is zero, but the quota is still shown.
    """
    now = now.astimezone()
    first_day = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time()).astimezone().timestamp()
    daily = store.daily(since) if store else {}
    first_bytes = store.first_byte_times(since) if store else {}
    clients = store.by_client(since) if store else {}
    total = Tally()
    by_model: dict[str, Tally] = {}
    by_day: list[dict[str, Any]] = []
    for offset in range(days):
        day = (first_day + timedelta(days=offset)).isoformat()
        models = daily.get(day, {})
        day_total = Tally()
        for model, tally in models.items():
            day_total += tally
            by_model[model] = by_model.get(model, Tally()) + tally
        total += day_total
        times = first_bytes.get(day, [])
        by_day.append(
            {
                "date": day,
                **tally_json(day_total),
                "by_model": {m: {"requests": t.requests, "credits": round(t.credits, 4)} for m, t in models.items()},
                "ttfb_p50_ms": _rounded(percentile(times, 0.5)),
                "ttfb_p95_ms": _rounded(percentile(times, 0.95)),
            }
        )
    all_times = sorted(t for times in first_bytes.values() for t in times)
    week_since = (now - timedelta(days=PACE_DAYS)).timestamp()
    outlook = forecast(quota, store.credits_since(week_since) if store else 0.0, now)
    return {
        "days": days,
        "total": tally_json(total),
        "error_rate": round(total.errors / total.requests, 4) if total.requests else 0.0,
        "ttfb_ms": {"p50": _rounded(percentile(all_times, 0.5)), "p95": _rounded(percentile(all_times, 0.95))},
        "by_model": {model: tally_json(t) for model, t in sorted(by_model.items(), key=lambda i: -i[1].credits)},
        "by_client": {c: tally_json(t) for c, t in sorted(clients.items(), key=lambda i: -i[1].requests)},
        "by_day": by_day,
        "quota": None if quota is None else quota_json(quota),
        "forecast": None if outlook is None else forecast_json(outlook),
    }


def quota_json(quota: Quota) -> dict[str, Any]:
    return {
        "subscription": quota.subscription,
        "used": round(quota.used, 4),
        "limit": round(quota.limit, 4),
        "remaining": round(quota.remaining, 4),
        "resets_at": quota.resets_at.isoformat() if quota.resets_at else None,
        "overage": quota.overage,
    }


def forecast_json(outlook: Forecast) -> dict[str, Any]:
    return {
        "pace_per_day": round(outlook.pace_per_day, 4),
        "remaining": round(outlook.remaining, 4),
        "runs_out": outlook.runs_out.isoformat() if outlook.runs_out else None,
        "resets": outlook.resets.isoformat() if outlook.resets else None,
        "lasts_until_reset": outlook.lasts_until_reset,
    }


def request_json(stored: StoredRequest) -> dict[str, Any]:
    record: RequestRecord = stored.record
    return {
        "id": stored.id,
        "time": record.time.isoformat(timespec="seconds"),
        "api": record.api,
        "client": record.client,
        "model": record.model,
        "model_requested": record.model_requested,
        "login": record.login,
        "status": record.status,
        "ok": record.ok,
        "error_kind": record.error_kind,
        "error": record.error,
        "duration_ms": round(record.duration_ms, 1),
        "ttfb_ms": _rounded(record.ttfb_ms),
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "context_percent": record.context_percent,
        "credits": record.credits,
        "stream": record.stream,
        "changes": [{"kind": kind, "detail": detail} for kind, detail in record.changes],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

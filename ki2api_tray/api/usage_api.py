"""`GET /api/usage` and `GET /api/requests`: the usage store as key-protected JSON (design.md §3).

The status page's dashboard polls these; scripts may too. Queries run in a worker thread so a slow disk
never holds up the event loop that streams answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from ..core.errors import InvalidRequest
from ..state import Status
from ..usage.store import UsageStore
from ..usage.summary import request_json, usage_json

MAX_DAYS = 90
DEFAULT_DAYS = 30
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


def whole_number(request: Request, name: str, default: int, lowest: int, highest: int) -> int:
    """A query parameter that must be a whole number in range; anything else is a clear 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or not lowest <= int(raw) <= highest:
        raise InvalidRequest(f"{name} must be a whole number from {lowest} to {highest}, got {raw[:20]!r}.", param=name)
    return int(raw)


def add_usage_routes(
    app: FastAPI,
    *,
    usage: UsageStore | None,
    check_key: Callable[[Request], None],
    status: Callable[[], Status],
) -> None:
    @app.get("/api/usage")
    async def usage_summary(request: Request) -> dict[str, Any]:
        check_key(request)
        days = whole_number(request, "days", DEFAULT_DAYS, 1, MAX_DAYS)
        quota = status().quota
        now = datetime.now().astimezone()
        body = await asyncio.to_thread(usage_json, usage, days=days, now=now, quota=quota)
        return {**body, "recording": usage is not None}

    @app.get("/api/requests")
    async def recent_requests(request: Request) -> dict[str, Any]:
        check_key(request)
        limit = whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        before = whole_number(request, "before", 0, 0, 2**62) or None
        wanted = request.query_params.get("status", "")
        if wanted not in ("", "ok", "error"):
            raise InvalidRequest(f"status must be 'ok' or 'error', got {wanted[:20]!r}.", param="status")
        if usage is None:
            return {"requests": []}
        rows = await asyncio.to_thread(
            usage.recent,
            limit,
            status=wanted,
            model=request.query_params.get("model", ""),
            client=request.query_params.get("client", ""),
            before_id=before,
        )
        return {"requests": [request_json(row) for row in rows]}

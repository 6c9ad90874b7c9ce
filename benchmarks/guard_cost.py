"""What the request guard (Host, Origin, CORS) adds to one request, in-process with no network.

The same tiny ASGI app is called directly and behind `RequestGuard`, with the headers a browser-based
client sends (an allowed Origin, so the CORS headers are added too); the difference is the guard's cost.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ki2api_tray.api.guard import GuardPolicy, RequestGuard
from ki2api_tray.config import Settings
from ki2api_tray.core.errors import Ki2apiError

HEADERS = [
    (b"host", b"127.0.0.1:8989"),
    (b"origin", b"http://localhost:3000"),
    (b"authorization", b"Bearer ki2api-key-2024"),
    (b"content-type", b"application/json"),
]


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _refuse(request: Request, error: Ki2apiError) -> Response:
    return Response(status_code=error.status)


async def _time(app: object, calls: int) -> float:
    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": HEADERS}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    start = time.perf_counter()
    for _ in range(calls):
        await app(scope, receive, send)  # type: ignore[operator]
    return (time.perf_counter() - start) / calls


def guard_cost_us(calls: int = 20_000) -> tuple[float, float]:
    """(microseconds per request without the guard, with it); the best of three rounds each."""
    guarded = RequestGuard(_ok, policy=GuardPolicy.from_settings(Settings()), refuse=_refuse)

    async def run() -> tuple[float, float]:
        bare = min([await _time(_ok, calls) for _ in range(3)])
        with_guard = min([await _time(guarded, calls) for _ in range(3)])
        return bare * 1e6, with_guard * 1e6

    return asyncio.run(run())

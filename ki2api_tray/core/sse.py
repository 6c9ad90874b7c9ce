"""Server-sent events: the only place the `event:` / `data:` line syntax is written."""

from __future__ import annotations

import json
from typing import Any


def format_sse(data: Any, event: str | None = None) -> bytes:
    """One SSE message. `data` is JSON-encoded unless it is already a string (e.g. `[DONE]`)."""
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {body}\n\n".encode()

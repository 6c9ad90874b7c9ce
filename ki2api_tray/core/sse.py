"""Server-sent events: the only place the `event:` / `data:` line syntax is written."""

from __future__ import annotations

import json
from typing import Any

# Python's str.splitlines (and so httpx's `iter_lines`, which SSE readers build on) also ends a line at
# these. In JSON text they can only sit inside strings, where their \u escapes mean the same.
_SPLITLINES_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def format_sse(data: Any, event: str | None = None) -> bytes:
    """One SSE message. `data` is JSON-encoded unless it is already a string (e.g. `[DONE]`).

    The result never breaks a line reader: a lone UTF-16 surrogate (which a client's or Kiro's `\\ud83d`
    escape can carry in) cannot be UTF-8, so such data falls back to ASCII escapes; U+0085/U+2028/U+2029
    are escaped too.
    """
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        raw = f"{head}data: {body}\n\n".encode()
    except UnicodeEncodeError:
        body = json.dumps(data, separators=(",", ":"))  # all ASCII
        return f"{head}data: {body}\n\n".encode()
    for char, escape in _SPLITLINES_BREAKS:
        if char in raw:
            raw = raw.replace(char, escape)
    return raw

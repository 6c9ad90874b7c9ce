"""A lean fake Kiro for benchmarks: paced event streams on loopback that cost almost nothing to serve.

The frames are the test fake's own (`tests.frames`, kiro-protocol.md §5) and the model list and quota
come from `tests.fake_kiro.catalog`, but requests are not validated or recorded (the tests do that), so
the "direct" baseline measures the stream rather than the fake. The prompt picks the reply: a
`bench:<events>:<interval_us>` marker asks for that many text events, one every `interval_us`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

from tests.fake_kiro.accounts import Account, Accounts, write_token_file
from tests.fake_kiro.catalog import models_page, usage_limits
from tests.fake_kiro.validation import BAD_BEARER
from tests.frames import event_frame

CHAT_PATH = "/generateAssistantResponse"
MARKER = re.compile(rb"bench:(\d+):(\d+)")
# Without a marker (nothing in the benchmark sends one) a short unpaced answer keeps the fake harmless.
DEFAULT_EVENTS = 3
# Far from the ~5 minutes left at which ki2api refreshes, so no refresh happens during a run.
TOKEN_LIFETIME = 6 * 3600.0

_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
_WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".\n")


def marker(events: int, interval: float) -> str:
    """The prompt text that asks the fake for `events` text events, `interval` seconds apart."""
    return f"bench:{events}:{round(interval * 1_000_000)}"


def text_of(index: int) -> str:
    """The text delta carried by event `index` (a model-sized token, so frames have a realistic size)."""
    return _WORDS[index % len(_WORDS)]


@functools.lru_cache(maxsize=32)
def answer_text(events: int) -> str:
    """The whole answer of a reply with `events` text events, as a client should end up with it."""
    return "".join(text_of(i) for i in range(events))


def stream_frames(events: int) -> list[bytes]:
    """The frames of one answer: `events` text deltas, then the context-usage and metering events (§11)."""
    frames = [event_frame("assistantResponseEvent", {"content": text_of(i)}) for i in range(events)]
    frames.append(event_frame("contextUsageEvent", {"contextUsagePercentage": 1.5}))
    frames.append(event_frame("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.12}))
    return frames


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@functools.lru_cache(maxsize=32)
def _reply_chunks(events: int) -> tuple[tuple[bytes, ...], bytes]:
    """HTTP chunks ready to write: one per text event, then a tail with the closing events and the end."""
    frames = stream_frames(events)
    paced = tuple(_http_chunk(frame) for frame in frames[:events])
    tail = b"".join(_http_chunk(frame) for frame in frames[events:]) + b"0\r\n\r\n"
    return paced, tail


def _json_response(status: int, body: Any) -> bytes:
    data = json.dumps(body).encode()
    reason = {200: "OK", 403: "Forbidden", 404: "Not Found"}.get(status, "Error")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


class PacedKiro:
    """Serves keep-alive HTTP/1.1 connections with Content-Length bodies (what httpx sends for bytes)."""

    def __init__(self, account: Account) -> None:
        self._account = account
        self._bearer = f"Bearer {account.access_token}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._answer_one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection, between requests or in the middle of a stream
        finally:
            writer.close()

    async def _answer_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        target = request_line.split(" ")[1]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length") or 0))
        path = target.partition("?")[0]
        if path == CHAT_PATH and headers.get("authorization") == self._bearer:
            await self._stream(writer, body)
        elif path == CHAT_PATH:
            writer.write(_json_response(403, BAD_BEARER))
        elif path == "/ListAvailableModels":
            writer.write(_json_response(200, models_page(None, 100)))
        elif path == "/getUsageLimits":
            writer.write(_json_response(200, usage_limits(self._account, with_email=False)))
        else:
            writer.write(_json_response(404, {"message": "UnknownOperationException", "reason": None}))
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    async def _stream(self, writer: asyncio.StreamWriter, body: bytes) -> None:
        found = MARKER.search(body)
        events = int(found.group(1)) if found else DEFAULT_EVENTS
        interval = int(found.group(2)) / 1_000_000 if found else 0.0
        paced, tail = _reply_chunks(events)
        loop = asyncio.get_running_loop()
        writer.write(_STREAM_HEAD)
        start = loop.time()
        for index, chunk in enumerate(paced):
            # Deadlines are absolute, so timer lateness never accumulates: event i leaves at start + i * interval.
            delay = start + index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
        writer.write(tail)


async def serve(account: Account) -> None:
    """Listen on a free loopback port, print it, and serve until stdin closes (the parent is done or gone)."""
    kiro = PacedKiro(account)
    server = await asyncio.start_server(kiro.handle, "127.0.0.1", 0, backlog=256)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main(argv: list[str]) -> int:
    """`python -m benchmarks.paced_kiro HOME`: log a fake account in under HOME, then serve."""
    if len(argv) != 1:
        print("usage: python -m benchmarks.paced_kiro HOME", file=sys.stderr)
        return 2
    account = Accounts().add_social()
    write_token_file(Path(argv[0]), account, expires_in=TOKEN_LIFETIME)
    asyncio.run(serve(account))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The two ways a benchmark client gets an answer: straight from the fake Kiro, or through ki2api.

Both sides do comparable work per event, so their times can be divided: the direct client decodes
Kiro's binary frames with ki2api's own decoder and parses each JSON payload; the ki2api client splits
the SSE stream and parses each chunk's JSON. Both count text deltas, so a short answer cannot pass.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.core.eventstream import EventStreamDecoder
from ki2api_tray.core.kiro_request import build_kiro_request
from ki2api_tray.core.model import ChatRequest, Message, ModelInfo, TextPart

from .paced_kiro import answer_text, marker

MODEL = "claude-sonnet-4.5"


class BenchmarkError(Exception):
    """A request in a benchmark failed or came back incomplete; the figures would be meaningless."""


@dataclass(frozen=True)
class StreamTiming:
    """One streamed answer, timed from just before the request was sent."""

    first_event: float  # seconds until the first text delta arrived
    total: float  # seconds until the stream ended
    events: int  # text deltas received


class Side(Protocol):
    """Something that answers prompts for the benchmark: the fake Kiro directly, or ki2api."""

    name: str

    async def stream(self, events: int, interval: float) -> StreamTiming: ...

    async def complete(self, events: int) -> None:
        """A whole (non-streamed) answer made of `events` text deltas; raises unless all of it arrived."""
        ...


def _check_count(side: str, got: int, expected: int) -> int:
    if got != expected:
        raise BenchmarkError(f"{side}: expected {expected} text deltas, got {got}")
    return got


def _check_text(side: str, text: str, events: int) -> None:
    if text != answer_text(events):
        raise BenchmarkError(f"{side}: the answer is not the {events} deltas the fake sent")


class DirectSide:
    """Reads the fake Kiro's /generateAssistantResponse itself, the way ki2api's upstream client does."""

    name = "direct"

    def __init__(self, http: httpx.AsyncClient, kiro_url: str, access_token: str, profile_arn: str) -> None:
        self._http = http
        self._url = f"{kiro_url}/generateAssistantResponse"
        self._profile_arn = profile_arn
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/x-amz-json-1.0",
            "x-amz-target": "AmazonCodeWhispererStreamingService.GenerateAssistantResponse",
            "Accept": "application/vnd.amazon.eventstream",
        }
        self._bodies: dict[str, bytes] = {}

    def _body(self, prompt: str) -> bytes:
        # The same Kiro body ki2api builds for this prompt, so both sides send comparable requests.
        if prompt not in self._bodies:
            chat = ChatRequest(model=MODEL, messages=(Message("user", (TextPart(prompt),)),), stream=True)
            kiro = build_kiro_request(
                chat, model=ModelInfo(MODEL), profile_arn=self._profile_arn, conversation_id=str(uuid.uuid4())
            )
            self._bodies[prompt] = kiro.body
        return self._bodies[prompt]

    async def stream(self, events: int, interval: float) -> StreamTiming:
        body = self._body(marker(events, interval))
        start = time.perf_counter()
        first = 0.0
        count = 0
        async with self._http.stream("POST", self._url, content=body, headers=self._headers) as response:
            if response.status_code != 200:
                raise BenchmarkError(f"direct: HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            decoder = EventStreamDecoder()
            async for chunk in response.aiter_raw():
                for frame in decoder.feed(chunk):
                    payload = json.loads(frame.payload)
                    if frame.event_type == "assistantResponseEvent" and payload.get("content"):
                        count += 1
                        if count == 1:
                            first = time.perf_counter() - start
            decoder.close()
        total = time.perf_counter() - start
        return StreamTiming(first, total, _check_count(self.name, count, events))

    async def complete(self, events: int) -> None:
        response = await self._http.post(self._url, content=self._body(marker(events, 0.0)), headers=self._headers)
        if response.status_code != 200:
            raise BenchmarkError(f"direct: HTTP {response.status_code}: {response.content[:200]!r}")
        decoder = EventStreamDecoder()
        payloads = [json.loads(frame.payload) for frame in decoder.feed(response.content)]
        decoder.close()
        _check_text(self.name, "".join(payload.get("content", "") for payload in payloads), events)


class ProxySide:
    """Asks ki2api's OpenAI-compatible /v1/chat/completions, as any OpenAI client would."""

    name = "ki2api"

    def __init__(self, http: httpx.AsyncClient, proxy_url: str) -> None:
        self._http = http
        self._url = f"{proxy_url}/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}", "Content-Type": "application/json"}

    def _body(self, events: int, interval: float, *, stream: bool) -> bytes:
        message = {"role": "user", "content": marker(events, interval)}
        return json.dumps({"model": MODEL, "messages": [message], "stream": stream}).encode()

    async def stream(self, events: int, interval: float) -> StreamTiming:
        body = self._body(events, interval, stream=True)
        start = time.perf_counter()
        first = 0.0
        count = 0
        async with self._http.stream("POST", self._url, content=body, headers=self._headers) as response:
            if response.status_code != 200:
                raise BenchmarkError(f"ki2api: HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            pending = b""
            async for chunk in response.aiter_raw():
                *messages, pending = (pending + chunk).split(b"\n\n")
                for message in messages:
                    if not message.startswith(b"data: {"):
                        continue  # keep-alive comments and the closing [DONE]
                    if _delta_text(json.loads(message[6:])):
                        count += 1
                        if count == 1:
                            first = time.perf_counter() - start
        total = time.perf_counter() - start
        return StreamTiming(first, total, _check_count(self.name, count, events))

    async def complete(self, events: int) -> None:
        body = self._body(events, 0.0, stream=False)
        response = await self._http.post(self._url, content=body, headers=self._headers)
        if response.status_code != 200:
            raise BenchmarkError(f"ki2api: HTTP {response.status_code}: {response.content[:200]!r}")
        _check_text(self.name, response.json()["choices"][0]["message"]["content"], events)


def _delta_text(chunk: dict[str, Any]) -> str:
    if "error" in chunk:
        raise BenchmarkError(f"ki2api: error in stream: {chunk['error']}")
    choices = chunk.get("choices") or [{}]
    text = choices[0].get("delta", {}).get("content")
    return text if isinstance(text, str) else ""

"""Pure-core throughput: Kiro frames in, client SSE bytes out, on one core with no I/O.

The pipeline is the server's, step for step: the event-stream decoder fed one network chunk per frame,
the Kiro stream translator, then the OpenAI chunk encoder or the Anthropic event encoder and SSE framing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ki2api_tray.core.anthropic_format import AnthropicStreamEncoder
from ki2api_tray.core.eventstream import EventStreamDecoder
from ki2api_tray.core.kiro_stream import KiroStreamTranslator
from ki2api_tray.core.model import StreamEvent
from ki2api_tray.core.openai_format import OpenAIStreamEncoder
from ki2api_tray.core.sse import format_sse

from .paced_kiro import stream_frames

Encode = Callable[[list[StreamEvent]], bytes]


def _openai_encoder() -> Encode:
    encoder = OpenAIStreamEncoder(
        model="claude-sonnet-4.5", completion_id="chatcmpl-bench", created=0, include_usage=False
    )
    return lambda batch: b"".join(format_sse(chunk) for event in batch for chunk in encoder.encode(event))


def _anthropic_encoder() -> Encode:
    encoder = AnthropicStreamEncoder(model="claude-sonnet-4.5", message_id="msg_bench", input_tokens=10)
    return lambda batch: b"".join(format_sse(data, name) for event in batch for name, data in encoder.encode(event))


def _translate_once(chunks: list[bytes], encode: Encode, tools: tuple[str, ...]) -> int:
    """Run one whole answer through the pipeline; returns the SSE bytes produced (so none is skipped)."""
    decoder = EventStreamDecoder()
    translator = KiroStreamTranslator(known_tools=tools)
    produced = 0
    for chunk in chunks:
        batch: list[StreamEvent] = []
        for frame in decoder.feed(chunk):
            batch.extend(translator.feed(frame))
        produced += len(encode(batch))
    decoder.close()
    return produced + len(encode(translator.finish()))


def events_per_second(protocol: str, *, events: int = 1000, seconds: float = 1.0, tools: tuple[str, ...] = ()) -> float:
    """Text events per second through decode + translate + encode for `protocol` ("openai" or "anthropic").

    `tools` are tool names the client declared; with any, the translator also scans text for
    bracket-style tool calls (kiro-protocol.md §6.3), as it does for agents' requests.
    """
    make_encoder = {"openai": _openai_encoder, "anthropic": _anthropic_encoder}[protocol]
    chunks = stream_frames(events)
    _translate_once(chunks, make_encoder(), tools)  # warm-up: first-call costs are not per-event costs
    best = float("inf")
    spent = 0.0
    while spent < seconds:
        encode = make_encoder()
        started = time.perf_counter()
        _translate_once(chunks, encode, tools)
        elapsed = time.perf_counter() - started
        best = min(best, elapsed)
        spent += elapsed
    return events / best

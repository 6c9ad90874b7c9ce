"""What the fake answers to one generateAssistantResponse call, and how the bytes leave the socket.

A `StreamReply` is a list of events encoded as real event-stream frames (kiro-protocol.md §5), cut into
HTTP writes by a `Chunking`, with optional delays, a corrupted frame, a dropped connection or trailing
garbage. An `ErrorReply` is a plain non-200 JSON answer (§8).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.frames import encode_frame, event_frame, exception_frame

# (":event-type", payload). A name ending in "Exception" becomes an exception frame and one ending in
# "Error" an error frame (§6.4), so scenario lists can mix them with events.
Event = tuple[str, dict[str, Any]]


def frame_bytes(event: Event) -> bytes:
    """Encode one event exactly as Kiro does: three string headers, compact sorted-key JSON (§5, §6.1)."""
    name, payload = event
    if name.endswith("Exception"):
        return exception_frame(name, str(payload.get("message", "")))
    if name.endswith("Error"):
        headers = {
            ":error-code": name,
            ":error-message": str(payload.get("message", "")),
            ":message-type": "error",
        }
        return encode_frame(headers, b"")
    return event_frame(name, payload)


@dataclass(frozen=True)
class Chunking:
    """How the body is cut into HTTP writes. Use the constructors: whole, per_frame, one_byte, fixed, random."""

    mode: Literal["whole", "frames", "fixed", "random"] = "frames"
    sizes: tuple[int, ...] = ()
    seed: int = 0
    max_size: int = 64

    @classmethod
    def whole(cls) -> Chunking:
        return cls("whole")

    @classmethod
    def per_frame(cls) -> Chunking:
        """One write per frame: what a real server produces as events are generated."""
        return cls("frames")

    @classmethod
    def one_byte(cls) -> Chunking:
        """Every byte its own write: splits land inside prelude, headers, CRCs and UTF-8 characters."""
        return cls("fixed", sizes=(1,))

    @classmethod
    def fixed(cls, *sizes: int) -> Chunking:
        """Writes of these sizes, cycled (e.g. fixed(3, 7))."""
        if not sizes or min(sizes) < 1:
            raise ValueError("fixed chunking needs sizes >= 1")
        return cls("fixed", sizes=tuple(sizes))

    @classmethod
    def random(cls, seed: int, max_size: int = 64) -> Chunking:
        """Sizes drawn uniformly from 1..max_size by `random.Random(seed)`: reproducible per seed."""
        return cls("random", seed=seed, max_size=max_size)

    def cuts(self, body_length: int, frame_ends: Sequence[int]) -> set[int]:
        """Offsets (0 < offset < body_length) where one write ends and the next begins."""
        if self.mode == "whole":
            return set()
        if self.mode == "frames":
            return {end for end in frame_ends if 0 < end < body_length}
        rng = random.Random(self.seed)
        cuts: set[int] = set()
        offset, i = 0, 0
        while True:
            if self.mode == "fixed":
                step = self.sizes[i % len(self.sizes)]
            else:
                step = rng.randint(1, self.max_size)
            offset += step
            i += 1
            if offset >= body_length:
                return cuts
            cuts.add(offset)


@dataclass(frozen=True)
class StreamReply:
    """A 200 event stream.

    - `first_byte_delay`: seconds before anything is sent, status line included (first-token timeouts).
    - `pause`: (after_frame, seconds): stall after that many whole frames (0 = after the headers).
    - `disconnect_after_frames`: send that many frames, then drop the connection without ending the body.
    - `corrupt_frame`: index of a frame whose message CRC is damaged.
    - `raw_tail`: bytes appended after the last frame (e.g. a truncated frame).
    - `chunk_interval`: seconds between writes, so a client really reads them separately.
    """

    events: Sequence[Event]
    chunking: Chunking = field(default_factory=Chunking.per_frame)
    first_byte_delay: float = 0.0
    pause: tuple[int, float] | None = None
    disconnect_after_frames: int | None = None
    corrupt_frame: int | None = None
    raw_tail: bytes = b""
    chunk_interval: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", tuple(self.events))

    def frames(self) -> list[bytes]:
        frames = [frame_bytes(event) for event in self.events]
        if self.corrupt_frame is not None:
            damaged = bytearray(frames[self.corrupt_frame])
            damaged[-1] ^= 0xFF
            frames[self.corrupt_frame] = bytes(damaged)
        if self.disconnect_after_frames is not None:
            frames = frames[: self.disconnect_after_frames]
        return frames

    def body(self) -> bytes:
        """Every byte the client will receive, in order."""
        tail = b"" if self.disconnect_after_frames is not None else self.raw_tail
        return b"".join(self.frames()) + tail

    def plan(self) -> list[bytes | float]:
        """The writes (bytes) and stalls (seconds) the server performs after the response headers."""
        frames = self.frames()
        ends: list[int] = []
        total = 0
        for frame in frames:
            total += len(frame)
            ends.append(total)
        body = self.body()
        cuts = self.chunking.cuts(len(body), ends)
        pause_at: int | None = None
        if self.pause is not None:
            after, _ = self.pause
            pause_at = 0 if after <= 0 else ends[min(after, len(ends)) - 1]
            if 0 < pause_at < len(body):
                cuts.add(pause_at)
        steps: list[bytes | float] = []
        if pause_at == 0 and self.pause is not None:
            steps.append(self.pause[1])
        start = 0
        for end in [*sorted(cuts), len(body)]:
            if end <= start:
                continue
            if steps and self.chunk_interval and isinstance(steps[-1], bytes):
                steps.append(self.chunk_interval)
            steps.append(body[start:end])
            if self.pause is not None and end == pause_at:
                steps.append(self.pause[1])
            start = end
        return steps


@dataclass(frozen=True)
class ErrorReply:
    """A non-200 answer with a JSON body, e.g. ErrorReply(429, HIGH_TRAFFIC)."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


Reply = StreamReply | ErrorReply

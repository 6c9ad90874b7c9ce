"""Load shapes: paced streams from many clients, unpaced bursts, and closed-loop non-stream requests.

Each function drives one `Side` (the fake directly, or ki2api) with asyncio tasks sharing one
httpx.AsyncClient, and returns raw timings; the run module turns them into figures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from .clients import Side, StreamTiming


@dataclass(frozen=True)
class Burst:
    """Unpaced streams: how many text events all clients received, in how many wall-clock seconds."""

    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


async def paced_streams(
    side: Side, *, clients: int, streams_each: int, events: int, interval: float
) -> list[StreamTiming]:
    """`clients` concurrent clients each stream `streams_each` paced answers back to back.

    Client starts are spread evenly over one answer's duration, so the server sees `clients` streams in
    flight at staggered stages (as it would with many users) instead of all of them arriving in one
    instant; every request's time to first event then reflects a server already carrying the others.
    """
    spread = events * interval / clients

    async def client(number: int) -> list[StreamTiming]:
        await asyncio.sleep(number * spread)
        return [await side.stream(events, interval) for _ in range(streams_each)]

    results = await asyncio.gather(*(client(number) for number in range(clients)))
    return [timing for timings in results for timing in timings]


async def burst(side: Side, *, clients: int, rounds: int, events: int) -> Burst:
    """`rounds` times, `clients` unpaced streams at once; counts the text events delivered."""
    received = 0
    started = time.perf_counter()
    for _ in range(rounds):
        timings = await asyncio.gather(*(side.stream(events, 0.0) for _ in range(clients)))
        received += sum(timing.events for timing in timings)
    return Burst(received, time.perf_counter() - started)


async def requests_per_second(side: Side, *, clients: int, seconds: float, events: int) -> float:
    """Closed loop: each client sends its next non-stream request as soon as the last one is answered."""
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    async def client() -> int:
        done = 0
        while time.perf_counter() < deadline:
            await side.complete(events)
            done += 1
        return done

    completed = sum(await asyncio.gather(*(client() for _ in range(clients))))
    return completed / (time.perf_counter() - started)


async def streamed_requests(side: Side, *, count: int, clients: int, events: int) -> None:
    """`count` short unpaced streams over `clients` concurrent clients (to load memory, not to time)."""
    remaining = count

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await side.stream(events, 0.0)

    await asyncio.gather(*(client() for _ in range(clients)))

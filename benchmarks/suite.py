"""The benchmark suite: starts the fake Kiro and ki2api, runs every load shape, and prints the table.

All traffic stays on loopback. The fake Kiro, ki2api and the load-generating clients are three
processes sharing this machine's cores, so every figure includes that contention on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from .clients import BenchmarkError, DirectSide, ProxySide, StreamTiming
from .core_speed import events_per_second
from .guard_cost import guard_cost_us
from .load import burst, paced_streams, requests_per_second, streamed_requests
from .process import FakeKiroProcess, ServerProcess, VirtualScreen
from .table import Figure, Target, render
from .usage_cost import store_costs

QUOTA_WAIT = 10.0  # ki2api reads the quota ~2 s after it starts; idle memory is measured after that


@dataclass(frozen=True)
class Plan:
    """How much of each load to run; `QUICK` is a smoke-sized copy of `FULL`."""

    paced_events: int = 200
    paced_interval: float = 0.005
    single_streams: int = 6
    many_clients: int = 32
    many_streams_each: int = 3
    burst_events: int = 500
    burst_rounds: int = 3
    nonstream_seconds: float = 3.0
    nonstream_events: int = 20
    memory_requests: int = 1000
    memory_checkpoints: int = 5
    memory_events: int = 50
    cold_starts: int = 3
    core_seconds: float = 1.0


FULL = Plan()
QUICK = Plan(
    paced_events=20,
    single_streams=2,
    many_streams_each=1,
    burst_events=100,
    burst_rounds=1,
    nonstream_seconds=0.5,
    memory_requests=100,
    memory_events=20,
    cold_starts=1,
    core_seconds=0.2,
)


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _ms(seconds: float) -> float:
    return seconds * 1000


def _clients(count: int) -> str:
    return "1 client" if count == 1 else f"{count} clients"


# --- pure core -------------------------------------------------------------------------------------------


def core_figures(plan: Plan) -> list[Figure]:
    _progress("pure core")
    target = Target(">=", 50_000)
    openai = events_per_second("openai", seconds=plan.core_seconds)
    anthropic = events_per_second("anthropic", seconds=plan.core_seconds)
    _progress("usage store")
    records = 2_000 if plan.core_seconds < 1 else 8_000  # under the queue limit: nothing is dropped
    add_us, rows_per_second = store_costs(records)
    bare, guarded = guard_cost_us(calls=2_000 if plan.core_seconds < 1 else 20_000)
    return [
        Figure("core: decode + translate + OpenAI chunks (1 core)", openai, "events/s", target),
        Figure("core: decode + translate + Anthropic events (1 core)", anthropic, "events/s", target),
        Figure(
            "usage store: queueing one request's record",
            add_us,
            "us",
            Target("<=", 50),
            f"on the request path; {records:,} records",
        ),
        Figure(
            "usage store: rows written by its thread",
            rows_per_second,
            "rows/s",
            Target(">=", 1_000),
            "batched inserts, SQLite WAL, off the request path",
        ),
        Figure(
            "request guard (Host, Origin, CORS): added time per request",
            guarded - bare,
            "us",
            Target("<=", 100),
            detail=f"{bare:.1f} us bare app, {guarded:.1f} us behind the guard",
        ),
    ]


# --- through the server ----------------------------------------------------------------------------------


@dataclass
class Live:
    """The running pieces one live measurement needs."""

    plan: Plan
    server: ServerProcess
    direct: DirectSide
    proxy: ProxySide
    http: httpx.AsyncClient


async def _wait_for_quota(live: Live) -> bool:
    """Wait (bounded) until ki2api has made its start-up quota call, so "idle" includes it."""
    deadline = time.monotonic() + QUOTA_WAIT
    while time.monotonic() < deadline:
        health = (await live.http.get(f"{live.server.url}/health")).json()
        if health.get("quota") is not None:
            return True
        await asyncio.sleep(0.05)
    return False


async def memory_figures(live: Live) -> list[Figure]:
    plan, server = live.plan, live.server
    _progress("idle memory")
    quota_read = await _wait_for_quota(live)
    idle = server.rss_mb()
    _progress(f"memory over {plan.memory_requests} streamed requests")
    step = plan.memory_requests // plan.memory_checkpoints
    after: list[float] = []
    for _ in range(plan.memory_checkpoints):
        await streamed_requests(live.proxy, count=step, clients=plan.many_clients, events=plan.memory_events)
        after.append(server.rss_mb())
    total = step * plan.memory_checkpoints
    trend = " -> ".join(f"{rss:.1f}" for rss in after)
    return [
        Figure(
            "server process: idle RSS after start",
            idle,
            "MB",
            Target("<=", 80),
            "after the start-up quota call" if quota_read else "quota call not seen",
        ),
        Figure(
            f"server process: RSS after {total:,} streamed requests", after[-1], "MB", detail=f"every {step}: {trend}"
        ),
        Figure(
            f"server process: RSS growth, requests {step:,} -> {total:,}",
            after[-1] - after[0],
            "MB",
            Target("<=", 2.0),
            "no growth beyond allocator noise",
        ),
    ]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _paced_pair(clients: int, direct: list[StreamTiming], proxy: list[StreamTiming]) -> list[Figure]:
    direct_total = _median([t.total for t in direct])
    proxy_total = _median([t.total for t in proxy])
    direct_first = _median([t.first_event for t in direct])
    proxy_first = _median([t.first_event for t in proxy])
    samples = f"median of {len(proxy)}"
    return [
        Figure(
            f"paced stream, {_clients(clients)}: total time via ki2api / direct",
            proxy_total / direct_total,
            "x",
            Target("<=", 1.05),
            f"ki2api {proxy_total:.3f} s, direct {direct_total:.3f} s ({samples})",
        ),
        Figure(
            f"paced stream, {_clients(clients)}: added time to first byte",
            _ms(proxy_first - direct_first),
            "ms",
            Target("<=", 3.0),
            f"ki2api {_ms(proxy_first):.2f} ms, direct {_ms(direct_first):.2f} ms ({samples})",
        ),
    ]


async def paced_figures(live: Live) -> list[Figure]:
    plan = live.plan
    figures: list[Figure] = []
    for clients, streams_each in ((1, plan.single_streams), (plan.many_clients, plan.many_streams_each)):
        _progress(f"paced streams, {_clients(clients)}")
        timings = {}
        for side in (live.direct, live.proxy):
            timings[side.name] = await paced_streams(
                side, clients=clients, streams_each=streams_each, events=plan.paced_events, interval=plan.paced_interval
            )
        figures += _paced_pair(clients, timings["direct"], timings["ki2api"])
    return figures


async def unpaced_figures(live: Live) -> list[Figure]:
    plan = live.plan
    clients = plan.many_clients
    _progress(f"unpaced streams, {_clients(clients)}")
    direct = await burst(live.direct, clients=clients, rounds=plan.burst_rounds, events=plan.burst_events)
    cpu_before = live.server.cpu_seconds()
    client_cpu_before = time.process_time()
    proxy = await burst(live.proxy, clients=clients, rounds=plan.burst_rounds, events=plan.burst_events)
    server_cpu = live.server.cpu_seconds() - cpu_before
    client_cpu = time.process_time() - client_cpu_before
    return [
        Figure(
            f"unpaced stream, {_clients(clients)}: events delivered via ki2api",
            proxy.per_second,
            "events/s",
            Target(">=", 10_000),
            f"direct {direct.per_second:,.0f} events/s; {proxy.events:,} events in {proxy.seconds:.2f} s",
        ),
        Figure(
            "unpaced stream: ki2api CPU per 1,000 events",
            server_cpu / proxy.events * 1000,
            "cpu-s",
            detail=f"ki2api {server_cpu:.2f} CPU s, clients {client_cpu:.2f} CPU s in that time",
        ),
    ]


async def nonstream_figures(live: Live) -> list[Figure]:
    plan = live.plan
    figures: list[Figure] = []
    for clients in (1, plan.many_clients):
        _progress(f"non-stream requests, {_clients(clients)}")
        rates = {}
        for side in (live.direct, live.proxy):
            rates[side.name] = await requests_per_second(
                side, clients=clients, seconds=plan.nonstream_seconds, events=plan.nonstream_events
            )
        direct, proxy = rates["direct"], rates["ki2api"]
        figures.append(
            Figure(
                f"non-stream, {_clients(clients)}: requests via ki2api",
                proxy,
                "req/s",
                detail=f"direct {direct:,.0f} req/s; ki2api / direct = {proxy / direct:.2f}",
            )
        )
    return figures


async def live_figures(plan: Plan, fake: FakeKiroProcess, server: ServerProcess) -> dict[str, list[Figure]]:
    access_token, profile_arn = fake.login()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(trust_env=False, timeout=60.0, limits=limits) as http:
        live = Live(
            plan, server, DirectSide(http, fake.url, access_token, profile_arn), ProxySide(http, server.url), http
        )
        # The memory figures come first: "idle" must be measured before any request.
        memory = await memory_figures(live)
        # Those requests warmed ki2api (connections, caches); give the direct side the same head start.
        await streamed_requests(live.direct, count=plan.many_clients, clients=plan.many_clients, events=10)
        return {
            "paced": await paced_figures(live),
            "unpaced": await unpaced_figures(live),
            "nonstream": await nonstream_figures(live),
            "memory": memory,
        }


def cold_start_figure(samples: list[float], cpu: list[float]) -> Figure:
    return Figure(
        "server process: cold start to a running /health",
        _median(samples),
        "s",
        Target("<=", 0.5),
        f"median of {len(samples)}: " + ", ".join(f"{s:.2f}" for s in samples) + f"; CPU {_median(cpu):.2f} s",
    )


# --- the command ---------------------------------------------------------------------------------------------


def _environment() -> str:
    """One line saying what the figures were measured on, including how busy the machine already was."""
    cores = os.cpu_count() or 0
    load = f"; load average {os.getloadavg()[0]:.1f} at the start" if hasattr(os, "getloadavg") else ""
    return (
        f"ki2api benchmarks: Python {platform.python_version()} on {platform.system()}, {cores} cores shared by "
        f"the fake Kiro, ki2api and the clients (all on loopback){load}"
    )


def run_suite(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds of smoke-sized load (figures are rough)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    # On SIGTERM, unwind through the `finally` blocks so the fake Kiro and ki2api processes are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    environment = _environment()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ki2api-bench-") as tmp:
        root = Path(tmp)
        log_path = root / "ki2api.log"
        try:
            figures = _measure(plan, root, log_path)
        except (BenchmarkError, httpx.HTTPError) as error:
            print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
            if log_path.exists():
                print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    print(environment + (" [--quick: smoke-sized, figures are rough]" if args.quick else ""))
    print(render(figures))
    print(f"(whole run: {time.perf_counter() - started:.0f} s)")
    return 0


def _measure(plan: Plan, root: Path, log_path: Path) -> list[Figure]:
    core = core_figures(plan)
    home = root / "home"
    fake = FakeKiroProcess(home)
    try:
        with log_path.open("wb") as log:
            _progress("starting ki2api")
            server = ServerProcess(home, root / "state-0", fake.url, log)
            try:
                live = asyncio.run(live_figures(plan, fake, server))
            finally:
                server.stop()
            cold, cold_cpu = [server.cold_start], [server.cold_start_cpu]
            for number in range(1, plan.cold_starts):
                _progress(f"cold start {number + 1} of {plan.cold_starts}")
                another = ServerProcess(home, root / f"state-{number}", fake.url, log)
                another.stop()
                cold.append(another.cold_start)
                cold_cpu.append(another.cold_start_cpu)
            tray = tray_figures(home, root, fake.url, log)
    finally:
        fake.stop()
    return [
        *live["paced"],
        *live["unpaced"],
        *live["nonstream"],
        *core,
        *live["memory"],
        cold_start_figure(cold, cold_cpu),
        *tray,
    ]


def tray_figures(home: Path, root: Path, kiro_url: str, log: IO[bytes]) -> list[Figure]:
    """The double-click process itself (tray + server) on a virtual screen, with pystray's X11 backend: the one
    the packaged Linux app uses. GTK (from a source install with python3-gi) costs about 90 MB more."""
    if not VirtualScreen.available():
        _progress("tray process not measured: it needs Xvfb (Linux)")
        return []
    _progress("tray process on a virtual screen")
    screen = VirtualScreen()
    try:
        env = {"DISPLAY": screen.display, "PYSTRAY_BACKEND": "xorg"}
        tray = ServerProcess(home, root / "state-tray", kiro_url, log, command=(), extra_env=env)
        try:
            time.sleep(2.5)  # past the start-up quota call, like the server figure
            rss = tray.rss_mb()
        finally:
            tray.stop()
    finally:
        screen.stop()
    return [
        Figure("tray process (X11 backend): idle RSS after start", rss, "MB", Target("<=", 80)),
        Figure(
            "tray process: cold start to a running /health",
            tray.cold_start,
            "s",
            Target("<=", 1.0),
            f"CPU {tray.cold_start_cpu:.2f} s; the icon is shown before the server starts",
        ),
    ]

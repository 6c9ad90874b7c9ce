"""What the usage store costs: the request path's share (queueing one record) and the writer's pace.

The request path only calls `UsageStore.add`, which puts a record on a queue; the writer thread inserts
batches into SQLite (WAL). Both are measured in this process against a store in a temporary folder.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

from ki2api_tray.state import RequestRecord
from ki2api_tray.usage.store import UsageStore


def _record(n: int) -> RequestRecord:
    return RequestRecord(
        time=datetime.now().astimezone(),
        api="openai",
        client="OpenAI/Python",
        model_requested="claude-sonnet-4-20250514",
        model="claude-sonnet-4",
        login="social",
        duration_ms=900.0 + n,
        ttfb_ms=300.0,
        input_tokens=1200,
        output_tokens=80,
        context_percent=1.5,
        credits=0.12,
        changes=(("system_in_first_message", ""), ("tool_renamed", "a_long_name -> a_lo_1")),
    )


def store_costs(records: int) -> tuple[float, float]:
    """(microseconds per `add` on the request path, rows per second the writer stores)."""
    batch = [_record(n) for n in range(records)]
    with tempfile.TemporaryDirectory(prefix="ki2api-bench-usage-") as folder:
        store = UsageStore(Path(folder))
        store.add(batch[0])  # warm-up: opens the file and creates the table
        store.flush()
        started = time.perf_counter()
        for record in batch:
            store.add(record)
        queued = time.perf_counter() - started
        store.flush(timeout=120)
        written = time.perf_counter() - started
        store.close()
    return queued / records * 1e6, records / written

"""The usage store on its own: what it keeps, what it prunes, two processes on one folder, a killed writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ki2api_tray.state import Quota, RequestRecord
from ki2api_tray.usage.store import FILE_NAME, UsageStore, connect
from ki2api_tray.usage.summary import forecast, percentile, usage_json

NOW = datetime(2026, 12, 1, 15, 0).astimezone()


def record(minutes_ago: float = 0, **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "time": NOW - timedelta(minutes=minutes_ago),
        "api": "openai",
        "client": "OpenAI/Python",
        "model_requested": "gpt-4o",
        "model": "claude-sonnet-4",
        "login": "social",
        "duration_ms": 900.0,
        "ttfb_ms": 300.0,
        "input_tokens": 1200,
        "output_tokens": 80,
        "context_percent": 1.5,
        "credits": 0.12,
    }
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


def rows_in(folder: Path) -> int:
    conn = connect(folder / FILE_NAME)  # as a reader would: waits for a writer's lock, creates the table if new
    try:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])
    finally:
        conn.close()


def test_records_come_back_newest_first_with_every_fact(tmp_path: Path) -> None:
    store = UsageStore(tmp_path, clock=NOW.timestamp)
    store.add(record(10, changes=(("tool_renamed", "a_long_name -> a_lo_1"),)))
    store.add(record(5, status=400, error_kind="kiro_rejected_request", error="Kiro said: Improperly formed request."))
    assert store.flush()
    newest, older = store.recent(10)
    assert newest.record.status == 400 and not newest.record.ok
    assert newest.record.error == "Kiro said: Improperly formed request."
    assert older.record == record(10, changes=(("tool_renamed", "a_long_name -> a_lo_1"),))
    assert newest.id > older.id
    assert [r.record.status for r in store.recent(10, status="ok")] == [200]
    assert store.recent(10, model="nope") == []
    store.close()



def test_a_lone_surrogate_from_a_client_does_not_cost_the_batch(tmp_path: Path) -> None:
    """A model name sent as JSON "\\udc00" once killed the writer thread: nothing was recorded after it."""
    store = UsageStore(tmp_path, clock=NOW.timestamp)
    store.add(record(2, model_requested="claude-\udc00", error="bad \ud800 name"))
    assert store.flush()
    store.add(record(1))
    assert store.flush()
    newest, older = store.recent(10)
    assert newest.record == record(1)
    assert (older.record.model_requested, older.record.error) == ("claude-\ufffd", "bad \ufffd name")
    store.close()

def test_old_records_are_pruned_by_age(tmp_path: Path) -> None:
    store = UsageStore(tmp_path, retention_days=90, clock=NOW.timestamp)
    store.add(record(minutes_ago=91 * 24 * 60))
    store.add(record(minutes_ago=89 * 24 * 60))
    assert store.flush()
    store.close()
    # Pruning runs when the writer starts: a new store on the same folder removes what is now too old.
    again = UsageStore(tmp_path, retention_days=90, clock=NOW.timestamp)
    again.add(record())
    assert again.flush()
    ages = sorted(round((NOW - r.record.time).days) for r in again.recent(10))
    assert ages == [0, 89]
    again.close()


def test_a_folder_that_cannot_hold_the_file_does_not_break_requests(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder", encoding="utf-8")
    store = UsageStore(blocker)
    store.add(record())  # must neither raise nor block
    assert store.flush(timeout=5)
    assert store.recent(5) == []
    store.close()


_WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    from ki2api_tray.state import RequestRecord
    from ki2api_tray.usage.store import UsageStore
    from pathlib import Path
    store = UsageStore(Path(sys.argv[1]))
    count = int(sys.argv[2])
    for n in range(count if count else 10**9):
        store.add(RequestRecord(time=datetime.now().astimezone(), client=sys.argv[3], model="m", credits=0.5))
        if n % 50 == 49:
            store.flush()
    store.flush()
    store.close()
    """
)


def _writer(folder: Path, count: int, client: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), str(count), client], env=env)


def test_two_processes_share_one_folder(tmp_path: Path) -> None:
    first, second = _writer(tmp_path, 400, "first"), _writer(tmp_path, 400, "second")
    try:
        assert first.wait(120) == 0 and second.wait(120) == 0
    finally:
        for writer in (first, second):
            writer.kill()
    store = UsageStore(tmp_path)
    since = (datetime.now() - timedelta(hours=1)).timestamp()
    assert {c: t.requests for c, t in store.by_client(since).items()} == {"first": 400, "second": 400}


def test_a_writer_killed_mid_write_leaves_a_sound_file(tmp_path: Path) -> None:
    writer = _writer(tmp_path, 0, "doomed")  # writes until killed
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and writer.poll() is None:
            if rows_in(tmp_path) >= 500:
                break
            time.sleep(0.05)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    kept = rows_in(tmp_path)
    assert kept >= 500
    with sqlite3.connect(tmp_path / FILE_NAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = UsageStore(tmp_path)
    store.add(record(client="survivor"))
    assert store.flush()
    assert store.recent(1)[0].record.client == "survivor"
    assert rows_in(tmp_path) == kept + 1
    store.close()


def test_never_message_text_or_secrets_in_the_columns(tmp_path: Path) -> None:
    """The table has no column a conversation or a key could go into (the end-to-end check is in test_usage_api)."""
    store = UsageStore(tmp_path)
    store.add(record())
    assert store.flush()
    with sqlite3.connect(tmp_path / FILE_NAME) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    assert not columns & {"messages", "prompt", "content", "text", "body", "api_key", "token", "authorization"}
    store.close()


# --- summaries ------------------------------------------------------------------------------------------


def test_usage_summary_fills_every_day_and_splits_by_model_and_client(tmp_path: Path) -> None:
    store = UsageStore(tmp_path)
    store.add(record(0, model="claude-sonnet-4", credits=1.0, ttfb_ms=100.0))
    store.add(record(1, model="claude-sonnet-4", credits=0.5, ttfb_ms=300.0))
    store.add(record(2, model="claude-haiku-4.5", credits=0.25, client="claude-cli", status=429, ttfb_ms=None))
    store.add(record(60 * 24 * 3, model="claude-haiku-4.5", credits=2.0))
    assert store.flush()
    body = usage_json(store, days=30, now=NOW, quota=None)
    assert len(body["by_day"]) == 30 and body["by_day"][-1]["date"] == NOW.date().isoformat()
    today = body["by_day"][-1]
    assert (today["requests"], today["errors"], today["credits"]) == (3, 1, 1.75)
    assert today["by_model"]["claude-sonnet-4"] == {"requests": 2, "credits": 1.5}
    assert body["by_day"][-4]["by_model"] == {"claude-haiku-4.5": {"requests": 1, "credits": 2.0}}
    assert body["total"] == {"requests": 4, "errors": 1, "credits": 3.75, "input_tokens": 4800, "output_tokens": 320}
    assert list(body["by_model"]) == ["claude-haiku-4.5", "claude-sonnet-4"]  # most credits first
    assert body["by_client"]["claude-cli"]["errors"] == 1
    assert body["error_rate"] == 0.25
    assert body["ttfb_ms"] == {"p50": 300.0, "p95": 300.0}
    assert body["forecast"] is None
    store.close()


def test_runway_forecast_uses_this_weeks_pace() -> None:
    resets = datetime(2027, 1, 1, tzinfo=NOW.tzinfo)
    quota = Quota("KIRO PRO", used=300, limit=1000, resets_at=resets)
    # 70 credits in 7 days = 10 a day; 700 left = 70 days: past the reset.
    relaxed = forecast(quota, 70.0, NOW)
    assert relaxed is not None and relaxed.lasts_until_reset and relaxed.pace_per_day == 10
    # 1400 a week = 200 a day; 700 left = 3.5 days.
    busy = forecast(quota, 1400.0, NOW)
    assert busy is not None and not busy.lasts_until_reset
    assert busy.runs_out == (NOW + timedelta(days=3.5)).date()
    assert forecast(None, 10.0, NOW) is None
    idle = forecast(quota, 0.0, NOW)
    assert idle is not None and idle.runs_out is None and idle.lasts_until_reset


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, None),
        ([5.0], 0.95, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(n) for n in range(1, 101)], 0.95, 95.0),
    ],
)
def test_percentile_nearest_rank(values: list[float], fraction: float, expected: float | None) -> None:
    assert percentile(values, fraction) == expected

"""UsageStore: one row per chat request in SQLite, written off the request path by one thread.

The request path only puts a `RequestRecord` on a queue; a writer thread inserts whatever has queued up in
one transaction. SQLite in WAL mode keeps the file whole when the process dies mid-write (the last
transaction is either in or out) and lets a second ki2api on the same folder read and write alongside
(`busy_timeout` makes each wait its turn). Rows hold facts only: never message text, never a key or token.
Old rows are pruned by age when the store opens and then hourly.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..state import RequestRecord

log = logging.getLogger(__name__)

FILE_NAME = "usage.sqlite3"
SCHEMA_VERSION = 1
QUEUE_LIMIT = 10_000  # a writer stuck on a locked file must not grow memory without bound
BATCH_LIMIT = 500
PRUNE_EVERY_SECONDS = 3600.0
BUSY_TIMEOUT_MS = 10_000
ERROR_LIMIT = 1000  # characters of an error message kept

_COLUMNS = (
    "time",
    "api",
    "client",
    "model_requested",
    "model",
    "login",
    "status",
    "error_kind",
    "error",
    "duration_ms",
    "ttfb_ms",
    "input_tokens",
    "output_tokens",
    "context_percent",
    "credits",
    "stream",
    "changes",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    api TEXT NOT NULL DEFAULT '',
    client TEXT NOT NULL DEFAULT '',
    model_requested TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    login TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    error_kind TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    duration_ms REAL NOT NULL DEFAULT 0,
    ttfb_ms REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    context_percent REAL,
    credits REAL,
    stream INTEGER NOT NULL DEFAULT 0,
    changes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (time);
PRAGMA user_version = {SCHEMA_VERSION};
"""
_INSERT = f"INSERT INTO requests ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


@dataclass(frozen=True)
class StoredRequest:
    id: int
    record: RequestRecord


@dataclass(frozen=True)
class Tally:
    """Counts for one group of requests (a day, a model, a client, or all of them)."""

    requests: int = 0
    errors: int = 0
    credits: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.requests + other.requests,
            self.errors + other.errors,
            self.credits + other.credits,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with a busy timeout, the table created if it is missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        conn.execute("PRAGMA journal_mode = WAL")  # stored in the file: later connections inherit it
        conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
    # NORMAL is durable across a crash of this process in WAL mode; only a power cut may lose the last rows.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class UsageStore:
    """Record requests in `folder`/usage.sqlite3 and answer questions about them.

    `add` never blocks and never raises; reads open their own short-lived connection, so they may be
    called from any thread (the API runs them in a worker thread, off the event loop).
    """

    def __init__(
        self,
        folder: Path,
        *,
        retention_days: int = 90,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = folder / FILE_NAME
        self.retention_days = retention_days
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._dropped = 0
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    # --- writing --------------------------------------------------------------------------------------

    def add(self, record: RequestRecord) -> None:
        if self._closed:
            return
        self._ensure_writer()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("usage store is behind; %d request records were not kept", self._dropped)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything added so far is in the file (tests, and before closing)."""
        if self._writer is None or not self._writer.is_alive():
            return self._queue.empty()
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._closed = True
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._queue.put(_STOP)
            writer.join(timeout)

    def _ensure_writer(self) -> None:
        if self._writer is not None:
            return
        with self._start_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="ki2api-usage", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        try:
            conn = connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            log.error("cannot open the usage store %s (%s); requests are not recorded", self.path, exc)
            self._drain_forever()
            return
        last_prune = -PRUNE_EVERY_SECONDS
        try:
            while True:
                batch, markers, stop = self._next_batch()
                if batch:
                    self._insert(conn, batch)
                if time.monotonic() - last_prune >= PRUNE_EVERY_SECONDS:
                    last_prune = time.monotonic()
                    self._prune(conn)
                for marker in markers:
                    marker.done.set()
                if stop:
                    break
        finally:
            conn.close()

    def _next_batch(self) -> tuple[list[RequestRecord], list[_Flush], bool]:
        item = self._queue.get()
        batch: list[RequestRecord] = []
        markers: list[_Flush] = []
        stop = False
        while True:
            if item is _STOP:
                stop = True
            elif isinstance(item, _Flush):
                markers.append(item)
            elif isinstance(item, RequestRecord):
                batch.append(item)
            if len(batch) >= BATCH_LIMIT or stop:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return batch, markers, stop

    def _insert(self, conn: sqlite3.Connection, batch: list[RequestRecord]) -> None:
        rows = [_row(record) for record in batch]
        for attempt in range(3):
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_INSERT, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:  # "database is locked" past the busy timeout
                log.warning("writing usage records failed (%s); attempt %d of 3", exc, attempt + 1)
            except sqlite3.Error as exc:
                log.error("writing usage records failed (%s); %d records lost", exc, len(rows))
                return
        log.error("gave up writing %d usage records", len(rows))

    def _prune(self, conn: sqlite3.Connection) -> None:
        if self.retention_days <= 0:
            return
        cutoff = self._clock() - self.retention_days * 86400
        try:
            deleted = conn.execute("DELETE FROM requests WHERE time < ?", (cutoff,)).rowcount
        except sqlite3.Error as exc:
            log.warning("pruning the usage store failed: %s", exc)
            return
        if deleted:
            log.info("usage store: removed %d records older than %d days", deleted, self.retention_days)

    def _drain_forever(self) -> None:
        """Without a file, keep the queue empty so `add` stays cheap and `flush` returns."""
        while True:
            item = self._queue.get()
            if isinstance(item, _Flush):
                item.done.set()
            if item is _STOP:
                return

    # --- reading --------------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        try:
            conn = connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            log.warning("cannot read the usage store %s: %s", self.path, exc)
            yield None
            return
        try:
            yield conn
        finally:
            conn.close()

    def recent(
        self, limit: int, *, status: str = "", model: str = "", client: str = "", before_id: int | None = None
    ) -> list[StoredRequest]:
        """The newest requests first; `status` is "ok" or "error", `model` and `client` exact names."""
        where: list[str] = ["1"]
        params: list[object] = []
        if status == "ok":
            where.append("status < 400")
        elif status == "error":
            where.append("status >= 400")
        if model:
            where.append("model = ?")
            params.append(model)
        if client:
            where.append("client = ?")
            params.append(client)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        query = f"SELECT id, {', '.join(_COLUMNS)} FROM requests WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        with self._reading() as conn:
            if conn is None:
                return []
            rows = conn.execute(query, (*params, limit)).fetchall()
        return [StoredRequest(row[0], _record(row[1:])) for row in rows]

    def daily(self, since: float) -> dict[str, dict[str, Tally]]:
        """Local date -> model -> counts, for requests at or after `since` (epoch seconds)."""
        query = """
            SELECT date(time, 'unixepoch', 'localtime'), model, count(*), sum(status >= 400),
                   coalesce(sum(credits), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0)
            FROM requests WHERE time >= ? GROUP BY 1, 2"""
        days: dict[str, dict[str, Tally]] = {}
        with self._reading() as conn:
            if conn is None:
                return days
            for day, model, *counts in conn.execute(query, (since,)):
                days.setdefault(day, {})[model] = Tally(
                    int(counts[0]), int(counts[1]), float(counts[2]), *map(int, counts[3:])
                )
        return days

    def by_client(self, since: float) -> dict[str, Tally]:
        query = """
            SELECT client, count(*), sum(status >= 400), coalesce(sum(credits), 0),
                   coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0)
            FROM requests WHERE time >= ? GROUP BY 1"""
        with self._reading() as conn:
            if conn is None:
                return {}
            return {
                client: Tally(int(n), int(e), float(c), int(i), int(o))
                for client, n, e, c, i, o in conn.execute(query, (since,))
            }

    def first_byte_times(self, since: float) -> dict[str, list[float]]:
        """Local date -> time to first byte (ms) of the successful requests that day, sorted."""
        query = """
            SELECT date(time, 'unixepoch', 'localtime'), ttfb_ms FROM requests
            WHERE time >= ? AND ttfb_ms IS NOT NULL AND status < 400 ORDER BY 2"""
        found: dict[str, list[float]] = {}
        with self._reading() as conn:
            if conn is None:
                return found
            for day, ttfb in conn.execute(query, (since,)):
                found.setdefault(day, []).append(float(ttfb))
        return found

    def credits_since(self, since: float) -> float:
        with self._reading() as conn:
            if conn is None:
                return 0.0
            value = conn.execute("SELECT coalesce(sum(credits), 0) FROM requests WHERE time >= ?", (since,)).fetchone()
        return float(value[0])


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(text: str) -> str:
    """SQLite stores UTF-8: a lone surrogate from a client's JSON (`"\\ud800"`) becomes U+FFFD, not a lost batch."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _row(record: RequestRecord) -> tuple[Any, ...]:
    changes = json.dumps([{"kind": kind, "detail": detail} for kind, detail in record.changes], ensure_ascii=False)
    return (
        record.time.timestamp(),
        _storable(record.api),
        _storable(record.client),
        _storable(record.model_requested),
        _storable(record.model),
        _storable(record.login),
        record.status,
        _storable(record.error_kind),
        _storable(record.error[:ERROR_LIMIT]),
        record.duration_ms,
        record.ttfb_ms,
        record.input_tokens,
        record.output_tokens,
        record.context_percent,
        record.credits,
        int(record.stream),
        _storable(changes),
    )


def _record(row: tuple[Any, ...]) -> RequestRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    try:
        changes = tuple((str(c["kind"]), str(c.get("detail", ""))) for c in json.loads(values["changes"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        changes = ()
    return RequestRecord(
        time=datetime.fromtimestamp(values["time"]).astimezone(),
        api=values["api"],
        client=values["client"],
        model_requested=values["model_requested"],
        model=values["model"],
        login=values["login"],
        status=int(values["status"]),
        error_kind=values["error_kind"],
        error=values["error"],
        duration_ms=float(values["duration_ms"]),
        ttfb_ms=values["ttfb_ms"],
        input_tokens=values["input_tokens"],
        output_tokens=values["output_tokens"],
        context_percent=values["context_percent"],
        credits=values["credits"],
        stream=bool(values["stream"]),
        changes=changes,
    )

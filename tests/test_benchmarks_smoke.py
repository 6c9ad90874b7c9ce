"""`python -m benchmarks.run --quick` runs end to end and prints every figure; timings are never asserted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# One fragment per figure the issue asks for, in the order the table prints them.
FIGURES = [
    "paced stream, 1 client: total time via ki2api / direct",
    "paced stream, 1 client: added time to first byte",
    "paced stream, 32 clients: total time via ki2api / direct",
    "paced stream, 32 clients: added time to first byte",
    "unpaced stream, 32 clients: events delivered via ki2api",
    "unpaced stream: ki2api CPU per 1,000 events",
    "non-stream, 1 client: requests via ki2api",
    "non-stream, 32 clients: requests via ki2api",
    "core: decode + translate + OpenAI chunks",
    "core: decode + translate + Anthropic events",
    "usage store: queueing one request's record",
    "usage store: rows written by its thread",
    "request guard (Host, Origin, CORS): added time per request",
    "server process: idle RSS after start",
    "server process: RSS after 100 streamed requests",
    "server process: RSS growth, requests",
    "server process: cold start to a running /health",
]
# The tray process is measured on a virtual screen, where there is one (CI installs Xvfb).
if sys.platform.startswith("linux") and shutil.which("Xvfb"):
    FIGURES += ["tray process (X11 backend): idle RSS after start", "tray process: cold start to a running /health"]


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def _table_rows(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("figure")) + 2  # header, then dashes
    return [line for line in lines[start:] if line and not line.startswith("(whole run")]


def test_benchmarks_quick_exits_cleanly(quick_run: subprocess.CompletedProcess[str]) -> None:
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]


@pytest.mark.parametrize("figure", FIGURES)
def test_benchmarks_quick_prints_figure(quick_run: subprocess.CompletedProcess[str], figure: str) -> None:
    rows = [row for row in _table_rows(quick_run.stdout) if row.startswith(figure)]
    assert len(rows) == 1, quick_run.stdout
    # After the name: a number with its unit, the target (or "-"), and whether it was met. A difference
    # against the direct baseline can come out below zero in a noisy quick run, so a sign is allowed.
    cells = rows[0][len(figure) :].split()
    assert any(cell.lstrip("-+")[:1].isdigit() for cell in cells[:3]), rows[0]
    assert {"yes", "NO", "-"} & set(cells), rows[0]


def test_benchmarks_quick_prints_one_row_per_figure(quick_run: subprocess.CompletedProcess[str]) -> None:
    assert len(_table_rows(quick_run.stdout)) == len(FIGURES), quick_run.stdout

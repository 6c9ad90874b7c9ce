"""The soft open-files limit is raised at start: Finder starts apps with 256, too few for a busy server."""

from __future__ import annotations

import os
import resource
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ki2api_tray.limits import OPEN_FILES_TARGET

HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
pytestmark = pytest.mark.skipif(
    not Path("/proc/self/limits").exists() or (HARD != resource.RLIM_INFINITY and HARD <= 256),
    reason="needs /proc and a hard limit above 256",
)


def test_app_raises_a_finder_sized_soft_limit_at_start(tmp_path: Path) -> None:
    """`ki2api-tray status` started under `ulimit -Sn 256`, the way Finder starts an app, reports from a
    process whose soft limit is raised; we read it from inside through the same /proc file."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        "from ki2api_tray import app\n"
        "app.main(['status'])\n"
        "print(open('/proc/self/limits').read())\n",
        encoding="utf-8",
    )
    command = f"ulimit -Sn 256 && exec {shlex.quote(sys.executable)} {shlex.quote(str(probe))}"
    output = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=os.environ, timeout=60)

    line = next(line for line in output.stdout.splitlines() if line.startswith("Max open files"))
    expected = OPEN_FILES_TARGET if HARD == resource.RLIM_INFINITY else min(OPEN_FILES_TARGET, HARD)
    assert int(line.split()[3]) == expected


def test_a_higher_limit_is_never_lowered(tmp_path: Path) -> None:
    high = 8192 if HARD == resource.RLIM_INFINITY else min(HARD, 8192)
    code = "from ki2api_tray.limits import raise_open_files_limit; print(raise_open_files_limit()[0])"
    command = f"ulimit -Sn {high} && exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    output = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=os.environ, timeout=60)

    assert int(output.stdout) == high

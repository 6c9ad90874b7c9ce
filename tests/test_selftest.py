"""`ki2api-tray --selftest` run in-process, and finding bundled assets frozen or from source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ki2api_tray import selftest
from ki2api_tray.config import load_settings
from ki2api_tray.resources import asset


def test_selftest_passes_and_leaves_the_users_token_alone(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    settings.token_file.parent.mkdir(parents=True)
    token = json.dumps({"accessToken": "a", "refreshToken": "r", "expiresAt": "2000-01-01T00:00:00Z"})
    settings.token_file.write_text(token, encoding="utf-8")
    before = settings.token_file.stat().st_mtime_ns

    assert selftest.run_selftest(settings) == 0

    lines = capsys.readouterr().out.splitlines()
    for check in ("app modules", "runtime modules", "tray backend", "desktop", "assets", "server"):
        assert any(line.startswith(f"ok   {check}:") for line in lines), lines
    assert lines[-1].startswith("selftest: passed")
    # An expired login would be refreshed and written back by a real start; the self-test must not try.
    assert settings.token_file.read_text(encoding="utf-8") == token
    assert settings.token_file.stat().st_mtime_ns == before


def test_selftest_fails_when_a_runtime_module_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(selftest, "NAMED_AT_RUNTIME", (*selftest.NAMED_AT_RUNTIME, "uvicorn.loops.not_bundled"))

    assert selftest.run_selftest(load_settings()) == 1

    out = capsys.readouterr().out
    assert "FAIL runtime modules: uvicorn.loops.not_bundled: ModuleNotFoundError" in out
    assert "selftest: FAILED (runtime modules)" in out


def test_selftest_reports_a_crashing_check_as_failed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_runtime(settings: object) -> None:
        raise RuntimeError("no runtime today")

    monkeypatch.setattr("ki2api_tray.runtime.build_runtime", broken_runtime)

    assert selftest.run_selftest(load_settings()) == 1

    out = capsys.readouterr().out
    assert "FAIL server: RuntimeError: no runtime today" in out
    assert "ok   assets:" in out  # the other checks still ran


def test_selftest_runs_without_stdout(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> None:
    """A windowed build starts with sys.stdout None; the result then lives in the exit code and the log."""
    monkeypatch.setattr(sys, "stdout", None)

    assert selftest.run_selftest(load_settings()) == 0


def test_asset_frozen_reads_from_the_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "icon.png").write_bytes(b"png")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)

    assert asset("icon.png") == tmp_path / "assets" / "icon.png"


def test_asset_missing_names_the_folder_searched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)

    with pytest.raises(FileNotFoundError, match=str(tmp_path / "assets")):
        asset("icon.png")


def test_asset_from_source_finds_the_committed_icon() -> None:
    assert asset("icon.png").parent.parent == Path(selftest.__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_selftest_builds_the_tray_where_there_is_a_session(tmp_path: Path) -> None:
    """With a display, the desktop check builds the real tray with the platform backend (X11 here; win32 and
    darwin on the release runners) and rings the single-instance doorbell."""
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "320x240x24", "-nolisten", "tcp"], pass_fds=[write_end]
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as display_pipe:
            number = display_pipe.readline().strip()
        assert number, "Xvfb did not start"
        env = {**os.environ, "DISPLAY": f":{number}", "PYSTRAY_BACKEND": "xorg", "KI2API_HOME": str(tmp_path)}
        result = subprocess.run(
            [sys.executable, "-m", "ki2api_tray", "--selftest"], env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)

    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("ok   desktop:"))
    assert "instance lock and doorbell work" in line and "tray built with pystray._xorg" in line
    assert "UI calls by direct" in line  # X11 marshals itself; only win32 gets window messages

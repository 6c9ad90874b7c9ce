"""Shared fixtures. pystray picks its backend at import time, so the dummy backend is set first."""

from __future__ import annotations

import os

os.environ.setdefault("PYSTRAY_BACKEND", "dummy")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest_plugins = ["tests.fixtures_kiro", "tests.fixtures_proxy"]

# Variables a developer's shell may carry that would leak into the code under test.
_LEAKY = [
    "API_KEY",
    "KI2API_HOST",
    "KI2API_PORT",
    "KIRO_TOKEN_FILE",
    "KIRO_PROFILE_FILE",
    "KIRO_ACCESS_TOKEN",
    "KIRO_REFRESH_TOKEN",
    "KIRO_REGION",
    "KIRO_RUNTIME_URL",
    "KIRO_MANAGEMENT_URL",
    "KIRO_AUTH_URL",
    "KIRO_OIDC_URL",
    "KIRO_Q_URL",
    "KIRO_API_KEY",
    "KIRO_CLI_DB",
    "KIRO_PROFILE_ARN",
    "KI2API_LOGIN_SOURCES",
    "KI2API_LANGUAGE",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test touches the real home, the real Kiro token or the real ki2api config."""
    home = tmp_path / "home"
    home.mkdir()
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("LOCALAPPDATA", str(home / "AppData" / "Local"))
    monkeypatch.setenv("KI2API_HOME", str(tmp_path / "ki2api-home"))
    # No test asks GitHub for releases; tests/test_updates.py turns the check on against its loopback fake.
    monkeypatch.setenv("KI2API_UPDATE_CHECK", "0")
    yield home

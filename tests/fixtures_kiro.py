"""Fixtures for the fake Kiro backend; registered by the root conftest through `pytest_plugins`.

`fake_kiro_server` runs for the whole session; `fake_kiro` hands it to one test, reset before and after;
`kiro_env` adds a logged-in social account with its token file and points every Kiro URL at the fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fake_kiro import Account, FakeKiro, running_fake_kiro, write_token_file

KIRO_URL_VARIABLES = ("KIRO_RUNTIME_URL", "KIRO_MANAGEMENT_URL", "KIRO_AUTH_URL", "KIRO_OIDC_URL")


@dataclass(frozen=True)
class KiroEnv:
    """What `kiro_env` set up: the fake, the logged-in account, the fake home and its token file."""

    fake: FakeKiro
    account: Account
    home: Path
    token_file: Path


@pytest.fixture(scope="session")
def fake_kiro_server() -> Iterator[FakeKiro]:
    with running_fake_kiro() as fake:
        yield fake


@pytest.fixture
def fake_kiro(fake_kiro_server: FakeKiro) -> Iterator[FakeKiro]:
    fake_kiro_server.reset()
    yield fake_kiro_server
    fake_kiro_server.reset()


@pytest.fixture
def kiro_env(fake_kiro: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> KiroEnv:
    account = fake_kiro.accounts.add_social()
    token_file = write_token_file(isolated_home, account)
    for variable in KIRO_URL_VARIABLES:
        monkeypatch.setenv(variable, fake_kiro.base_url)
    # The AWS surface is its own server (kiro-protocol-2026.md §1); `{region}` is filled in by ki2api.
    monkeypatch.setenv("KIRO_Q_URL", fake_kiro.q_url)
    return KiroEnv(fake_kiro, account, isolated_home, token_file)

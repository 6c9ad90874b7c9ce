"""Tokens given in the environment (the original Ki2API's Docker setup): renewed, kept in ki2api's state folder,
and used again after a restart with the same environment, so a container restart needs no new tokens."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest

from ki2api_tray.config import Settings
from ki2api_tray.kiro.env_login import login_file
from ki2api_tray.kiro.tokens import Credentials, TokenStore
from tests.test_tokens import Clock, FakeLogin, credentials, with_client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakeLogin:
    return FakeLogin()


def seeded(home: Path, access_token: str | None, refresh_token: str) -> Settings:
    """Settings as `KIRO_ACCESS_TOKEN` / `KIRO_REFRESH_TOKEN` give them, with no Kiro token file."""
    return Settings(
        token_file=home / ".aws" / "sso" / "cache" / "kiro-auth-token.json",
        profile_file=home / "profile.json",
        access_token=access_token,
        refresh_token=refresh_token,
        auth_url="https://auth.test",
        management_url="https://management.test",
    )


def test_a_renewed_environment_login_survives_a_restart(isolated_home: Path, clock: Clock, fake: FakeLogin) -> None:
    settings = seeded(isolated_home, None, "aor-seed")
    first = TokenStore(settings, clock=clock)
    first.reload()
    assert credentials(first, fake).access_token == "aoa-new-1"  # no access token given: renewed at once
    assert json.loads(fake.refreshes()[0].content) == {"refreshToken": "aor-seed"}
    saved = login_file(settings)
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert not settings.token_file.exists()  # Kiro's own file is never created for an environment login

    restarted = TokenStore(settings, clock=clock)  # the same environment, as a restarted container has
    assert restarted.reload().source == "environment"
    assert credentials(restarted, fake).access_token == "aoa-new-1"  # still fresh: no refresh on start
    assert len(fake.refreshes()) == 1
    clock.advance(hours=2)
    assert credentials(restarted, fake).access_token == "aoa-new-2"
    assert json.loads(fake.refreshes()[1].content) == {"refreshToken": "aor-new-1"}  # the renewed refresh token


def test_a_rejected_environment_token_is_renewed_and_kept(isolated_home: Path, clock: Clock, fake: FakeLogin) -> None:
    settings = seeded(isolated_home, "aoa-seed", "aor-seed")
    store = TokenStore(settings, clock=clock)
    store.reload()
    given = credentials(store, fake)
    assert given.access_token == "aoa-seed"

    async def rejected(http: httpx.AsyncClient) -> Credentials:
        return await store.refresh_after_rejection(http, given)  # Kiro said 403: the seed's token is dead

    assert with_client(fake, rejected).access_token == "aoa-new-1"
    again = TokenStore(settings, clock=clock)
    again.reload()
    assert credentials(again, fake).access_token == "aoa-new-1"


def test_new_tokens_in_the_environment_replace_the_saved_login(
    isolated_home: Path, clock: Clock, fake: FakeLogin
) -> None:
    old = seeded(isolated_home, None, "aor-seed")
    store = TokenStore(old, clock=clock)
    store.reload()
    credentials(store, fake)
    assert login_file(old).exists()

    new = seeded(isolated_home, "aoa-other", "aor-other")  # the person logged in again and passed new tokens
    fresh = TokenStore(new, clock=clock)
    fresh.reload()
    assert credentials(fresh, fake).access_token == "aoa-other"


def test_an_unreadable_saved_login_falls_back_to_the_environment(
    isolated_home: Path, clock: Clock, fake: FakeLogin
) -> None:
    settings = seeded(isolated_home, "aoa-seed", "aor-seed")
    path = login_file(settings)
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    store = TokenStore(settings, clock=clock)
    store.reload()
    assert credentials(store, fake).access_token == "aoa-seed"


def test_an_unwritable_state_folder_costs_only_the_restart_convenience(
    isolated_home: Path, clock: Clock, fake: FakeLogin, caplog: pytest.LogCaptureFixture
) -> None:
    settings = seeded(isolated_home, None, "aor-seed")
    state = login_file(settings).parent
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("a file where the state folder should be")  # unwritable even for root
    store = TokenStore(settings, clock=clock)
    store.reload()
    assert credentials(store, fake).access_token == "aoa-new-1"
    assert "a restart will need the tokens again" in caplog.text
    assert "aor-new-1" not in caplog.text and "aoa-new-1" not in caplog.text

"""kiro-cli's database as a login source (kiro-protocol-2026.md §5): read-only, rows named in every
problem, several rows made explicit, source order, followed like the token file."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from ki2api_tray.config import DEFAULT_API_KEY, load_settings
from ki2api_tray.report import status_report
from ki2api_tray.runtime import Runtime
from tests.fake_kiro import FakeKiro, write_token_file
from tests.fake_kiro.kiro_cli_db import kiro_cli_db_path, token_row, write_kiro_cli_db
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv
from tests.fixtures_proxy import start_proxy

MODEL = "claude-sonnet-4-5"


@pytest.fixture
def fake(fake_kiro: FakeKiro, monkeypatch: pytest.MonkeyPatch) -> FakeKiro:
    for variable in KIRO_URL_VARIABLES:
        monkeypatch.setenv(variable, fake_kiro.base_url)
    monkeypatch.setenv("KIRO_Q_URL", fake_kiro.q_url)
    return fake_kiro


@pytest.fixture
def running() -> Iterator[list[Runtime]]:
    started: list[Runtime] = []
    yield started
    for runtime in started:
        runtime.service.close()


def serve(fake: FakeKiro, home: Path, started: list[Runtime]) -> tuple[Runtime, openai.OpenAI]:
    runtime = start_proxy(KiroEnv(fake, fake.accounts.add_social(), home, home / "unused"))
    started.append(runtime)
    url = f"http://{runtime.state.snapshot().address}/v1"
    return runtime, openai.OpenAI(base_url=url, api_key=DEFAULT_API_KEY, max_retries=0)


def ask(client: openai.OpenAI, text: str) -> str:
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


def wait_until(check: object, deadline: float = 10.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_malformed_row_is_a_named_403_never_a_500(fake: FakeKiro, isolated_home: Path, running: list[Runtime]) -> None:
    write_kiro_cli_db(isolated_home, ("kirocli:social:token", "{not json"))
    runtime, client = serve(fake, isolated_home, running)

    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(client, "hi")

    assert caught.value.code == "kiro_login_required"
    assert "the kiro-cli login kirocli:social:token in" in caught.value.message
    assert "is not a JSON object" in caught.value.message
    token = runtime.state.snapshot().token
    assert token.health.value == "unreadable" and "kirocli:social:token" in token.detail


def test_row_without_refresh_token_says_so(fake: FakeKiro, isolated_home: Path, running: list[Runtime]) -> None:
    account = fake.accounts.add_social()
    key, row = token_row(account, expires_in=-60)
    row["refresh_token"] = ""
    write_kiro_cli_db(isolated_home, (key, row))
    _, client = serve(fake, isolated_home, running)

    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(client, "hi")

    assert caught.value.code == "kiro_login_required"
    assert "the kiro-cli login has no refresh token" in caught.value.message.lower()


def test_several_rows_are_named_and_config_chooses(
    fake: FakeKiro, isolated_home: Path, running: list[Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    social, idc = fake.accounts.add_social(), fake.accounts.add_idc()
    write_kiro_cli_db(isolated_home, token_row(social), account=idc, profile_arn=idc.profile_arn)
    runtime, client = serve(fake, isolated_home, running)

    assert ask(client, "first") == "Echo: first"
    note = runtime.state.snapshot().token.note
    assert "kirocli:social:token" in note and "kirocli:odic:token" in note and "kiro_cli_key" in note
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {social.access_token}"

    config = isolated_home.parent / "ki2api-home" / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"kiro_cli_key": "kirocli:odic:token"}))
    _, chosen = serve(fake, isolated_home, running)
    assert ask(chosen, "second") == "Echo: second"
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {idc.access_token}"


def test_database_is_opened_read_only(fake: FakeKiro, isolated_home: Path, running: list[Runtime]) -> None:
    account = fake.accounts.add_social()
    path = write_kiro_cli_db(isolated_home, account=account, expires_in=-60)
    os.chmod(path, 0o444)
    before = (path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir()))
    _, client = serve(fake, isolated_home, running)

    assert ask(client, "ro") == "Echo: ro"  # refreshed in memory, not written back

    assert fake.accounts.refresh_count == 1
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())) == before


def test_token_file_comes_first_unless_configured(
    fake: FakeKiro, isolated_home: Path, running: list[Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file, from_cli = fake.accounts.add_social(), fake.accounts.add_social()
    write_token_file(isolated_home, from_file)
    write_kiro_cli_db(isolated_home, account=from_cli)
    _, client = serve(fake, isolated_home, running)
    assert ask(client, "a") == "Echo: a"
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {from_file.access_token}"

    monkeypatch.setenv("KI2API_LOGIN_SOURCES", "kiro_cli,token_file")
    runtime, reordered = serve(fake, isolated_home, running)
    assert ask(reordered, "b") == "Echo: b"
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {from_cli.access_token}"
    assert runtime.state.snapshot().token.login == "Google, from kiro-cli"


def test_database_is_followed_like_the_token_file(fake: FakeKiro, isolated_home: Path, running: list[Runtime]) -> None:
    first, second = fake.accounts.add_social(), fake.accounts.add_social("Github")
    write_kiro_cli_db(isolated_home, account=first)
    runtime, client = serve(fake, isolated_home, running)
    assert ask(client, "one") == "Echo: one"

    # kiro-cli logs in as someone else: it rewrites its row (in WAL mode, as kiro-cli does).
    key, row = token_row(second)
    connection = sqlite3.connect(kiro_cli_db_path(isolated_home))
    connection.execute("UPDATE auth_kv SET value = ? WHERE key = ?", (json.dumps(row), key))
    connection.commit()
    connection.close()

    assert wait_until(lambda: runtime.state.snapshot().token.login == "GitHub, from kiro-cli")
    assert ask(client, "two") == "Echo: two"
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {second.access_token}"


def test_status_command_names_kind_and_source(fake: FakeKiro, isolated_home: Path) -> None:
    account = fake.accounts.add_builder_id()
    write_kiro_cli_db(isolated_home, account=account)

    text = status_report(load_settings()).as_text()

    assert "Login:        Builder ID, from kiro-cli" in text
    assert str(kiro_cli_db_path(isolated_home)) in text
    assert account.access_token not in text and account.refresh_token not in text

"""Several Kiro accounts (issue #14) driven through the official SDKs against the fake Kiro: failover on a 402,
a suspicious-activity cooldown, a suspension and a dead refresh token; every account out of credits; a
conversation staying on its account; and how the pool looks in /health, the status page and the state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from ki2api_tray.config import ConfigError, load_settings
from ki2api_tray.desktop.tray import TrayUI
from ki2api_tray.state import TokenHealth
from tests.fake_kiro import Account, FakeKiro, StreamReply, scenarios
from tests.fake_kiro.accounts import token_file_json
from tests.fake_kiro.host_rules import SUSPENDED
from tests.fake_kiro.kiro_cli_db import write_kiro_cli_db
from tests.fixtures_kiro import KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

MODEL = "claude-sonnet-4-5"


def write_config(accounts: list[dict[str, Any]], **extra: Any) -> Path:
    path = load_settings().app_paths.config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"accounts": accounts, **extra}), encoding="utf-8")
    return path


def other_token_file(home: Path, account: Account, name: str, **changes: Any) -> Path:
    path = home / "logins" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**token_file_json(account, None, 3600, "js"), **changes}), encoding="utf-8")
    return path


def served_by(fake: FakeKiro) -> Account | None:
    """The account whose bearer the last chat request carried."""
    sent = fake.chat_requests()[-1]
    return fake.accounts.by_access_token(sent.headers["authorization"].removeprefix("Bearer "))


def ask(proxy: Proxy, text: str) -> str:
    reply = proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


@pytest.fixture
def two(kiro_env: KiroEnv) -> Iterator[tuple[Proxy, Account]]:
    """The automatic social login first, then a Kiro API key named "work"."""
    key = kiro_env.fake.accounts.add_api_key()
    write_config([{"name": "work", "kiro_api_key": key.access_token}])
    runtime = start_proxy(kiro_env)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env), key
    finally:
        runtime.service.close()


@pytest.fixture
def three(kiro_env: KiroEnv) -> Iterator[tuple[Proxy, Account, Account]]:
    """The automatic social login, a second social login's token file ("personal"), a kiro-cli Builder ID
    ("cli")."""
    fake, home = kiro_env.fake, kiro_env.home
    personal = fake.accounts.add_social("GitHub")
    cli = fake.accounts.add_builder_id()
    database = write_kiro_cli_db(home / "elsewhere", account=cli)
    write_config(
        [
            {"name": "personal", "token_file": str(other_token_file(home, personal, "personal"))},
            {"name": "cli", "kiro_cli_db": str(database)},
        ]
    )
    runtime = start_proxy(kiro_env)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env), personal, cli
    finally:
        runtime.service.close()


def test_a_used_up_first_account_hands_over_to_the_next(two: tuple[Proxy, Account]) -> None:
    proxy, work = two
    fake, first = proxy.kiro.fake, proxy.kiro.account
    assert ask(proxy, "echo: one")
    assert served_by(fake) is first
    first.quota_reason = "MONTHLY_REQUEST_COUNT"

    answer = ask(proxy, "echo: two")

    assert answer  # the client never saw the 402
    assert served_by(fake) is work
    chats = len(fake.chat_requests())
    ask(proxy, "echo: three")
    assert len(fake.chat_requests()) == chats + 1  # the used-up account is not asked again
    assert served_by(fake) is work
    accounts = proxy.runtime.state.snapshot().accounts
    assert [a.name for a in accounts] == ["automatic", "work"]
    assert accounts[0].token.health is TokenHealth.EXHAUSTED and not accounts[0].in_use
    assert accounts[1].in_use and accounts[1].token.auth_kind == "api_key"
    assert proxy.runtime.state.snapshot().token.auth_kind == "api_key"  # the headline follows the account in use
    health = httpx.get(proxy.url + "/health").json()
    assert [(a["name"], a["health"], a["in_use"]) for a in health["accounts"]] == [
        ("automatic", "exhausted", False),
        ("work", "valid", True),
    ]
    assert work.access_token not in json.dumps(health)  # the key never shows


def test_a_cooldown_moves_to_the_next_account_without_retrying(three: tuple[Proxy, Account, Account]) -> None:
    proxy, personal, _ = three
    fake = proxy.kiro.fake
    proxy.kiro.account.suspicious = True

    reply = proxy.anthropic().messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )

    assert reply.content
    assert served_by(fake) is personal
    on_first = [r for r in fake.chat_requests() if r.headers["authorization"].endswith(proxy.kiro.account.access_token)]
    assert len(on_first) <= 1  # the 429 was not retried on the first account
    accounts = proxy.runtime.state.snapshot().accounts
    assert accounts[0].token.health is TokenHealth.COOLDOWN
    assert accounts[1].in_use


def test_a_suspended_account_is_taken_out_and_shown(three: tuple[Proxy, Account, Account]) -> None:
    proxy, personal, _ = three
    fake = proxy.kiro.fake
    proxy.kiro.account.suspended = True

    assert ask(proxy, "hi")
    assert served_by(fake) is personal
    proxy.kiro.account.suspended = False  # Kiro would lift it only after support; ki2api waits for the user
    ask(proxy, "another conversation")
    assert served_by(fake) is personal

    accounts = proxy.runtime.state.snapshot().accounts
    assert accounts[0].token.health is TokenHealth.SUSPENDED
    assert SUSPENDED["message"] in accounts[0].token.detail or accounts[0].token.support_url
    page = httpx.get(proxy.url + "/").text
    assert "automatic: Kiro account suspended" in page and "personal (in use)" in page
    assert "https://support.example.com/kiro" in page

    opened: list[str] = []

    class Desktop:
        def open(self, target: str) -> None:
            opened.append(target)

    runtime = proxy.runtime
    tray = TrayUI(runtime.service, runtime.state, runtime.settings, desktop=Desktop(), language="en")  # type: ignore[arg-type]
    labels = [str(item.text) for item in tray.build_menu().items if item.visible]
    assert "automatic: Kiro account suspended — contact Kiro support" in labels
    assert any(label.startswith("personal (in use): ") for label in labels)
    assert any(label.startswith("cli: ") for label in labels)
    tray.open_support()
    assert opened == ["https://support.example.com/kiro"]


def test_a_dead_refresh_token_hands_over_to_the_next(kiro_env: KiroEnv) -> None:
    fake, home = kiro_env.fake, kiro_env.home
    # The automatic login's access token has run out and its refresh token is refused (invalid_grant).
    kiro_env.token_file.write_text(
        json.dumps(
            {
                **token_file_json(kiro_env.account, None, -60, "js"),
                "refreshToken": "aorAAAAAdead",
            }
        ),
        encoding="utf-8",
    )
    key = fake.accounts.add_api_key()
    cli = fake.accounts.add_builder_id()
    write_config(
        [
            {"name": "cli", "kiro_cli_db": str(write_kiro_cli_db(home / "cli", account=cli))},
            {"name": "key", "kiro_api_key": key.access_token},
        ]
    )
    runtime = start_proxy(kiro_env)
    proxy = Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    try:
        assert ask(proxy, "hi")
        assert served_by(fake) is cli
        accounts = runtime.state.snapshot().accounts
        assert accounts[0].token.health is TokenHealth.REFRESH_FAILED
        assert [a.name for a in accounts if a.in_use] == ["cli"]
    finally:
        runtime.service.close()


def test_every_account_used_up_is_a_402_naming_the_first_return(two: tuple[Proxy, Account]) -> None:
    proxy, work = two
    proxy.kiro.account.quota_reason = "MONTHLY_REQUEST_COUNT"
    work.quota_reason = "OVERAGE_REQUEST_LIMIT_EXCEEDED"

    with pytest.raises(openai.APIStatusError) as caught:
        ask(proxy, "hi")
    with pytest.raises(anthropic.APIStatusError) as again:
        proxy.anthropic().messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "x"}])

    assert caught.value.status_code == 402 and again.value.status_code == 402
    message = caught.value.message
    assert "None of the 2 Kiro accounts" in message
    assert "The first to come back is" in message
    assert "automatic:" in message and "work:" in message


def test_a_conversation_stays_on_its_account_under_round_robin(kiro_env: KiroEnv) -> None:
    fake = kiro_env.fake
    key = fake.accounts.add_api_key()
    write_config([{"name": "work", "kiro_api_key": key.access_token}], account_routing="round_robin")
    runtime = start_proxy(kiro_env)
    proxy = Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    try:
        client = proxy.openai()
        first = [{"role": "user", "content": "plan the trip"}]
        client.chat.completions.create(model=MODEL, messages=first)
        a = served_by(fake)
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "something else"}])
        b = served_by(fake)
        follow_up = [*first, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "go on"}]
        client.chat.completions.create(model=MODEL, messages=follow_up)
        assert a is not None and b is not None and a is not b  # new conversations take turns
        assert served_by(fake) is a  # the follow-up stays where the conversation began
    finally:
        runtime.service.close()


@pytest.mark.parametrize(
    ("accounts", "wanted"),
    [
        ("not a list", "must be a list"),
        ([{"token_file": "x.json"}], "needs a name"),
        ([{"name": "a"}], "exactly one of"),
        ([{"name": "a", "token_file": "x", "kiro_api_key": "ksk_abcdefgh12"}], "exactly one of"),
        ([{"name": "a", "token_file": "x"}, {"name": "a", "token_file": "y"}], "used twice"),
    ],
)
def test_bad_accounts_in_config_are_named(isolated_home: Path, accounts: Any, wanted: str) -> None:
    path = load_settings().app_paths.config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"accounts": accounts}), encoding="utf-8")
    with pytest.raises(ConfigError, match=wanted):
        load_settings()


def test_an_answer_that_breaks_off_is_not_retried_on_another_account(two: tuple[Proxy, Account]) -> None:
    proxy, _ = two
    fake = proxy.kiro.fake
    reply = [*scenarios.text(*scenarios.pieces("Echo: half of this arrives")), *scenarios.usage()]
    fake.script(StreamReply(reply, disconnect_after_frames=2))

    received: list[str] = []
    with pytest.raises(openai.APIError, match="connection to Kiro broke"):
        for chunk in proxy.openai(timeout=30).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.extend(choice.delta.content or "" for choice in chunk.choices)

    assert "".join(received).startswith("Echo: ")
    assert len(fake.chat_requests()) == 1  # Kiro had started answering: no second account was asked
    assert served_by(fake) is proxy.kiro.account

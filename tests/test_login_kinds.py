"""Every kind of Kiro login, from every source, answered end to end through the official SDKs (issue #10).

ki2api starts with nothing but the login on disk (or KIRO_API_KEY) and the Kiro URLs pointed at the fake,
whose hosts accept or refuse each kind as kiro-protocol-2026.md §1.1 says. Each test checks the answer
the SDK got and which host, headers and profileArn the fake saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.runtime import Runtime
from tests.fake_kiro import (
    Account,
    FakeKiro,
    write_client_registration,
    write_profile_file,
    write_token_file,
)
from tests.fake_kiro.kiro_cli_db import write_kiro_cli_db
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv
from tests.fixtures_proxy import start_proxy

MODEL = "claude-sonnet-4-5"
Setup = Callable[[FakeKiro, Path, pytest.MonkeyPatch], Account]


@pytest.fixture
def kiro_urls(fake_kiro: FakeKiro, monkeypatch: pytest.MonkeyPatch) -> FakeKiro:
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


def serve(fake: FakeKiro, home: Path, account: Account, started: list[Runtime]) -> str:
    runtime = start_proxy(KiroEnv(fake, account, home, home / "unused"))
    started.append(runtime)
    return f"http://{runtime.state.snapshot().address}"


def ask_openai(url: str, text: str) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=DEFAULT_API_KEY, max_retries=0)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


def ask_anthropic(url: str, text: str) -> str:
    client = anthropic.Anthropic(base_url=url, api_key=DEFAULT_API_KEY, max_retries=0)
    reply = client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": text}])
    block = reply.content[0]
    assert block.type == "text"
    return block.text


# ---- one setup per login kind and source ------------------------------------------------------------------


def social_file(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_social("Github")
    write_token_file(home, account, expires_in=-60)  # expired: the social refresh runs first
    return account


def enterprise_file(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    # No profile.json: ki2api must ask ListAvailableProfiles; the profile lives in Frankfurt.
    account = fake.accounts.add_idc(region="eu-central-1", sso_region="eu-west-1")
    write_token_file(home, account, expires_in=-60)
    write_client_registration(home, account)
    return account


def builder_id_file(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_builder_id()
    write_token_file(home, account, expires_in=-60)
    write_client_registration(home, account)
    return account


def external_idp_file(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_external_idp()
    write_token_file(home, account, expires_in=-60)  # refreshed at the IdP's own token endpoint
    write_profile_file(home, account)  # OR-X: the ARN of these logins is in Kiro's profile.json
    return account


def api_key_env(fake: FakeKiro, home: Path, monkeypatch: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_api_key()
    monkeypatch.setenv("KIRO_API_KEY", account.access_token)
    return account


def social_cli(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_social()
    write_kiro_cli_db(home, account=account, expires_in=-60)
    return account


def enterprise_cli(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_idc()
    write_kiro_cli_db(home, account=account, expires_in=-60, profile_arn=account.profile_arn)
    return account


def builder_id_cli(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_builder_id()
    write_kiro_cli_db(home, account=account, expires_in=-60)
    return account


def external_idp_cli(fake: FakeKiro, home: Path, _: pytest.MonkeyPatch) -> Account:
    account = fake.accounts.add_external_idp()
    write_kiro_cli_db(home, account=account, expires_in=-60)  # no ARN anywhere: ListAvailableProfiles
    return account


LOGINS: dict[str, tuple[Setup, str, str]] = {
    # name: (setup, host the chat must land on, what the status says)
    "social-file": (social_file, "runtime", "GitHub, from the Kiro token file"),
    "enterprise-file": (enterprise_file, "q", "IAM Identity Center, from the Kiro token file"),
    "builder-id-file": (builder_id_file, "q", "Builder ID, from the Kiro token file"),
    "external-idp-file": (external_idp_file, "q", "external identity provider, from the Kiro token file"),
    "api-key": (api_key_env, "q", "Kiro API key, from KIRO_API_KEY"),
    "social-cli": (social_cli, "runtime", "Google, from kiro-cli"),
    "enterprise-cli": (enterprise_cli, "q", "IAM Identity Center, from kiro-cli"),
    "builder-id-cli": (builder_id_cli, "q", "Builder ID, from kiro-cli"),
    "external-idp-cli": (external_idp_cli, "q", "external identity provider, from kiro-cli"),
}


@pytest.mark.parametrize("name", list(LOGINS))
def test_every_login_kind_answers_the_first_request(
    name: str,
    kiro_urls: FakeKiro,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    running: list[Runtime],
) -> None:
    setup, host, label = LOGINS[name]
    fake = kiro_urls
    account = setup(fake, isolated_home, monkeypatch)
    cli_db = isolated_home / ".local" / "share" / "kiro-cli" / "data.sqlite3"
    db_before = cli_db.read_bytes() if cli_db.exists() else None
    url = serve(fake, isolated_home, account, running)

    assert ask_openai(url, f"hello {name}") == f"Echo: hello {name}"
    assert ask_anthropic(url, f"again {name}") == f"Echo: again {name}"

    chats = fake.chat_requests()
    assert [c.host for c in chats] == [host, host], [(r.host, r.path, r.body_size) for r in fake.requests]
    sent = chats[-1]
    assert sent.json.get("profileArn") == (account.profile_arn or None)
    assert sent.headers.get("tokentype") == {"external_idp": "EXTERNAL_IDP", "api_key": "API_KEY"}.get(account.kind)
    assert fake.rejections == [] or all(r.path.endswith("/") for r in fake.rejections)
    # Expired logins were renewed once; a key never is.
    assert fake.accounts.refresh_count == (0 if account.kind == "api_key" else 1)
    status = running[0].state.snapshot().token
    assert status.login == label
    assert status.health.value == "valid"
    if cli_db.exists():
        assert cli_db.read_bytes() == db_before  # kiro-cli's database is never written
    health = httpx.get(f"{url}/health").json()["token"]
    assert health["login"] == label
    if account.profile_arn:
        account_id = account.profile_arn.split(":")[4]
        assert health["profile_arn"].endswith(account.profile_arn.split(":")[5])
        assert account_id not in health["profile_arn"]


def test_enterprise_profile_found_in_its_region_and_cached(
    kiro_urls: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    account = enterprise_file(kiro_urls, isolated_home, monkeypatch)
    url = serve(kiro_urls, isolated_home, account, running)

    for n in range(3):
        assert ask_openai(url, f"q{n}") == f"Echo: q{n}"

    listings = [r for r in kiro_urls.requests if r.operation == "ListAvailableProfiles"]
    # EU SSO region: Frankfurt is probed first (2026 §2.1), found there, and asked only once.
    assert [r.region for r in listings] == ["eu-central-1"]
    assert {c.region for c in kiro_urls.chat_requests()} == {"eu-central-1"}
    page = httpx.get(url + "/").text
    assert account.profile_arn.split(":")[5] in page
    assert account.profile_arn.split(":")[4] not in page


def test_manual_profile_override_wins(
    kiro_urls: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    account = enterprise_file(kiro_urls, isolated_home, monkeypatch)
    monkeypatch.setenv("KIRO_PROFILE_ARN", account.profile_arn)
    url = serve(kiro_urls, isolated_home, account, running)

    assert ask_anthropic(url, "pinned") == "Echo: pinned"
    assert [r for r in kiro_urls.requests if r.operation == "ListAvailableProfiles"] == []


def test_builder_id_placeholder_setting(
    kiro_urls: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    # 2026 §9.3: if Kiro wants the placeholder after all, config.json builder_id_arn switches to it.
    kiro_urls.rules.builder_id_arn = "placeholder"
    account = builder_id_file(kiro_urls, isolated_home, monkeypatch)
    config = isolated_home.parent / "ki2api-home" / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"builder_id_arn": "placeholder"}))
    url = serve(kiro_urls, isolated_home, account, running)

    assert ask_openai(url, "bid") == "Echo: bid"
    assert kiro_urls.chat_requests()[-1].json["profileArn"].endswith(":638616132270:profile/AAAACCCCXXXX")


def test_social_falls_through_to_q_when_runtime_refuses_valid_bodies(
    kiro_urls: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    kiro_urls.rules.runtime_body_invalid = True  # 2026 §1.1 late-2026 warning
    account = social_file(kiro_urls, isolated_home, monkeypatch)
    url = serve(kiro_urls, isolated_home, account, running)

    assert ask_openai(url, "detour") == "Echo: detour"
    assert [c.host for c in kiro_urls.chat_requests()] == ["runtime", "q"]


def test_a_429_is_never_dodged_by_changing_host(
    kiro_urls: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    monkeypatch.setenv("KI2API_MAX_RETRIES", "0")
    account = social_file(kiro_urls, isolated_home, monkeypatch)
    kiro_urls.fail_next("/generateAssistantResponse", 429, {"message": "Too many", "reason": None})
    url = serve(kiro_urls, isolated_home, account, running)

    with pytest.raises(openai.RateLimitError):
        ask_openai(url, "busy")
    assert [c.host for c in kiro_urls.chat_requests()] == ["runtime"]


def test_malformed_api_key_is_a_named_403(
    kiro_urls: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    monkeypatch.setenv("KIRO_API_KEY", "not-a-kiro-key")
    url = serve(kiro_urls, isolated_home, kiro_urls.accounts.add_api_key(), running)

    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        ask_anthropic(url, "hi")

    body = caught.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["error"]["type"]) == ("error", "permission_error")
    assert "KIRO_API_KEY does not look like a Kiro API key" in body["error"]["message"]
    assert "not-a-kiro-key" not in body["error"]["message"]
    assert running[0].state.snapshot().token.health.value == "unreadable"
    assert kiro_urls.chat_requests() == []


def test_rejected_api_key_is_not_refreshed(
    kiro_urls: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    account = api_key_env(kiro_urls, isolated_home, monkeypatch)
    kiro_urls.accounts.expire_access_tokens(account)  # the key was revoked in the portal
    url = serve(kiro_urls, isolated_home, account, running)

    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask_openai(url, "hi")

    assert caught.value.code == "kiro_login_required"
    assert "API key" in caught.value.message
    assert kiro_urls.refresh_count == 0


def test_the_route_taken_is_logged_once_without_the_account_id(
    kiro_urls: FakeKiro,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    running: list[Runtime],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="ki2api_tray")
    account = enterprise_file(kiro_urls, isolated_home, monkeypatch)
    url = serve(kiro_urls, isolated_home, account, running)

    ask_openai(url, "one")
    ask_openai(url, "two")

    routes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Chat for the")]
    assert routes == [
        "Chat for the IAM Identity Center, from the Kiro token file login goes to the aws host "
        f"(region eu-central-1, host_order=auto); profile ARN arn:aws:codewhisperer:eu-central-1:…"
        f"{account.profile_arn.split(':')[4][-4:]}:{account.profile_arn.split(':')[5]} (from ListAvailableProfiles)"
    ]
    assert account.profile_arn.split(":")[4] not in caplog.text

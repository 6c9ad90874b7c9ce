"""Kiro's account-safety and quota signals (kiro-protocol-2026.md §7) as the client, the tray and the status
page see them: Kiro's own words, no refresh, no retry, and no further calls while the block lasts."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from ki2api_tray.desktop.tray import TrayUI
from ki2api_tray.state import TokenHealth
from ki2api_tray.wording import Level, level_of
from tests.fake_kiro import write_client_registration, write_profile_file, write_token_file
from tests.fake_kiro.host_rules import SUSPENDED
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-5"


def ask(proxy: Proxy, text: str) -> str:
    reply = proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


def test_suspension_stops_every_call_and_shows_kiros_words(proxy: Proxy) -> None:
    fake, account = proxy.kiro.fake, proxy.kiro.account
    account.suspended = True

    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        proxy.anthropic().messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    calls = len(fake.requests)
    with pytest.raises(openai.PermissionDeniedError) as again:
        ask(proxy, "once more")

    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "permission_error"
    assert SUSPENDED["message"] in body["error"]["message"]  # Kiro's own words
    assert "log in" not in body["error"]["message"].lower()
    assert again.value.code == "kiro_account_suspended"
    assert len(fake.requests) == calls  # no call to Kiro at all while suspended
    assert fake.refresh_count == 0
    # Whichever call met the suspension first (the model list or the chat), nothing was retried.
    assert len(fake.chat_requests()) <= 1
    assert len([r for r in fake.requests if r.operation == "ListAvailableModels"]) == 1
    status = proxy.runtime.state.snapshot()
    assert status.token.health is TokenHealth.SUSPENDED
    assert status.token.support_url == "https://support.example.com/kiro"
    assert level_of(status) is Level.BAD
    page = httpx.get(proxy.url + "/").text
    assert "https://support.example.com/kiro" in page and "Open Kiro support" in page


def test_tray_offers_kiro_support_while_suspended(proxy: Proxy) -> None:
    proxy.kiro.account.suspended = True
    with pytest.raises(openai.PermissionDeniedError):
        ask(proxy, "hi")

    opened: list[str] = []

    class Desktop:
        def open(self, target: str) -> None:
            opened.append(target)

        def copy(self, text: str) -> None:
            raise AssertionError("not expected")

    runtime = proxy.runtime
    tray = TrayUI(runtime.service, runtime.state, runtime.settings, desktop=Desktop(), language="en")  # type: ignore[arg-type]
    labels = [str(item.text) for item in tray.build_menu().items if item.visible]
    assert "Open Kiro support" in labels
    tray.open_support()
    assert opened == ["https://support.example.com/kiro"]


def test_used_up_credits_block_until_reset(proxy: Proxy) -> None:
    fake, account = proxy.kiro.fake, proxy.kiro.account
    account.quota_reason = "OVERAGE_REQUEST_LIMIT_EXCEEDED"

    with pytest.raises(openai.APIStatusError) as caught:
        ask(proxy, "hi")
    chats = len(fake.chat_requests())
    with pytest.raises(openai.APIStatusError):
        ask(proxy, "again")

    assert caught.value.status_code == 402
    assert "You have reached the limit for overages." in caught.value.message
    assert len(fake.chat_requests()) == chats <= 1
    token = proxy.runtime.state.snapshot().token
    assert token.health is TokenHealth.EXHAUSTED and token.blocked_until is not None


def test_suspicious_activity_cools_down_instead_of_retrying(proxy: Proxy) -> None:
    fake, account = proxy.kiro.fake, proxy.kiro.account
    account.suspicious = True

    with pytest.raises(openai.RateLimitError) as caught:
        ask(proxy, "hi")
    with pytest.raises(openai.RateLimitError):
        ask(proxy, "again")

    assert "suspicious activity" in caught.value.message
    # A 429 is normally retried 3 times; this one is not, on any call (model list or chat).
    assert len(fake.chat_requests()) <= 1
    assert len([r for r in fake.requests if r.operation == "ListAvailableModels"]) == 1
    status = proxy.runtime.state.snapshot()
    assert status.token.health is TokenHealth.COOLDOWN
    assert level_of(status) is Level.WARN


def test_not_authorized_rechecks_the_profile_first(proxy: Proxy) -> None:
    # An Identity Center login whose profile.json names a profile it may no longer use: Kiro's
    # `403 User is not authorized` is an ARN problem, not a ban (2026 §2.3), so ki2api asks Kiro again.
    fake, home = proxy.kiro.fake, proxy.kiro.home
    idc, other = fake.accounts.add_idc(), fake.accounts.add_idc()
    write_token_file(home, idc)
    write_client_registration(home, idc)
    write_profile_file(home, other)
    proxy.runtime.tokens.reload()

    assert ask(proxy, "stale profile") == "Echo: stale profile"

    listings = [r for r in fake.requests if r.operation == "ListAvailableProfiles"]
    sent = [c.json.get("profileArn") for c in fake.chat_requests()]
    assert sent == [other.profile_arn, idc.profile_arn]
    assert len(listings) == 1
    assert proxy.runtime.state.snapshot().token.health is TokenHealth.VALID

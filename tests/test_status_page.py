"""The status page as a first-time user meets it: language, errors that come and go, the API key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from ki2api_tray.api.status_page import page_language, render_status_page
from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.i18n import language_from_accept
from ki2api_tray.service import StateReporter
from ki2api_tray.state import AppState, Phase, Status, TokenHealth, TokenStatus
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-20250514"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh-TW;q=0.9", "zh"),
        ("zh;q=0, en", "en"),
        ("*", None),
        ("", None),
        ("de-DE", "en"),
    ],
)
def test_accept_language_picks_the_best_of_our_languages(header: str, expected: str | None) -> None:
    assert language_from_accept(header) == expected


def test_page_language_order_query_then_browser_then_setting() -> None:
    assert page_language("en", accept_language="zh-CN", asked="") == "zh"
    assert page_language("zh", accept_language="zh-CN", asked="en") == "en"
    assert page_language("zh", accept_language="", asked="") == "zh"


def test_the_browser_language_decides_the_page(proxy: Proxy) -> None:
    chinese = httpx.get(proxy.url + "/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}, timeout=10)
    assert '<html lang="zh-CN">' in chinese.text and "运行中" in chinese.text
    assert chinese.headers["content-language"] == "zh"
    english = httpx.get(proxy.url + "/?lang=en", headers={"Accept-Language": "zh-CN"}, timeout=10)
    assert '<html lang="en">' in english.text and "running on" in english.text


def test_a_failed_request_shows_with_its_time_until_one_succeeds(proxy: Proxy) -> None:
    client = proxy.openai()
    with pytest.raises(Exception, match="Improperly formed"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "[[fake:error:400]]"}])
    page = httpx.get(proxy.url + "/?lang=en", timeout=10).text
    assert 'id="card-error"' in page and "Improperly formed request" in page
    status = proxy.runtime.state.snapshot()
    assert status.last_error_at is not None
    assert f"{status.last_error_at.astimezone():%H:%M} (less than a minute ago)" in page
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello again"}])
    page = httpx.get(proxy.url + "/?lang=en", timeout=10).text
    assert 'id="card-error"' not in page and "Improperly formed" not in page


def test_the_default_key_is_shown_plainly(proxy: Proxy) -> None:
    page = httpx.get(proxy.url + "/?lang=en", timeout=10).text
    assert f"API key: {DEFAULT_API_KEY} (the public default" in page


def test_a_server_error_is_not_cleared_by_a_request_and_a_request_error_not_by_a_restart() -> None:
    moment = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    state = AppState(Status(phase=Phase.ERROR, last_error="Port 8989 is in use", last_error_kind="server"))
    reporter = StateReporter(state, clock=lambda: moment)
    reporter.request_finished(True)
    assert state.snapshot().last_error == "Port 8989 is in use"
    reporter.quota_failed("Could not read the Kiro quota (ConnectError).")
    assert state.snapshot().last_error == "Port 8989 is in use"  # the older, more important problem stays

    state = AppState()
    reporter = StateReporter(state, clock=lambda: moment)
    reporter.quota_failed("Could not read the Kiro quota (ConnectError).")
    assert (state.snapshot().last_error_kind, state.snapshot().last_error_at) == ("quota", moment)
    reporter.request_finished(False, "Kiro is busy")
    assert state.snapshot().last_error == "Kiro is busy"
    reporter.request_finished(True)
    assert (state.snapshot().last_error, state.snapshot().last_error_at) == ("", None)


def test_the_chinese_page_has_no_english_line_under_the_login_card() -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    for health in TokenHealth:
        token = TokenStatus(health, now + timedelta(minutes=3), "social", "/home/me/token.json", "English detail")
        page = render_status_page(
            Status(phase=Phase.RUNNING, address="127.0.0.1:8989", token=token),
            base_url="http://127.0.0.1:8989/v1",
            language="zh",
            now=now,
        )
        card = page[page.index('id="card-login"') : page.index('id="card-requests"')]
        assert "English detail" not in card and "Read from" not in card
        assert "读取自 /home/me/token.json" in card

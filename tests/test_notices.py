"""Tray notifications about credits, the login and the account (each event once, switchable), About and
"Open Kiro to sign in"."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ki2api_tray import __version__
from ki2api_tray.desktop.notices import notices
from ki2api_tray.i18n import Translator
from ki2api_tray.service import StateReporter
from ki2api_tray.state import AppState, Quota, RequestRecord, Status, TokenHealth, TokenStatus
from tests.test_tray import NOW, FakeDesktop, make_tray, running, texts, wait_for

EN = Translator("en")
RESETS = datetime(2027, 1, 1, tzinfo=timezone.utc)


def with_quota(used: float, resets: datetime = RESETS) -> Status:
    return running(quota=Quota("KIRO PRO", used=used, limit=1000, resets_at=resets))


def test_credits_warn_at_80_and_95_percent_once_per_period() -> None:
    told: set[tuple[str, str]] = set()
    assert notices(with_quota(700), with_quota(790), EN, NOW, told) == []
    assert notices(with_quota(790), with_quota(800), EN, NOW, told) == [
        "80% of your Kiro credits are used (800 of 1,000)."
    ]
    assert notices(with_quota(800), with_quota(850), EN, NOW, told) == []  # told already
    assert notices(with_quota(850), with_quota(960), EN, NOW, told) == [
        "95% of your Kiro credits are used (960 of 1,000)."
    ]
    assert notices(with_quota(960), with_quota(990), EN, NOW, told) == []
    # A new period (the plan reset) may warn again.
    later = datetime(2027, 2, 1, tzinfo=timezone.utc)
    assert notices(with_quota(10, later), with_quota(810, later), EN, NOW, told) == [
        "80% of your Kiro credits are used (810 of 1,000)."
    ]


def test_jumping_straight_past_95_percent_gives_one_warning() -> None:
    told: set[tuple[str, str]] = set()
    assert notices(with_quota(0), with_quota(970), EN, NOW, told) == [
        "95% of your Kiro credits are used (970 of 1,000)."
    ]
    assert notices(with_quota(970), with_quota(975), EN, NOW, told) == []


def test_a_login_about_to_expire_without_renewal_is_told_once() -> None:
    told: set[tuple[str, str]] = set()
    expiring = running(token=TokenStatus(TokenHealth.EXPIRING, NOW + timedelta(minutes=4), renewable=False))
    assert notices(running(), expiring, EN, NOW, told) == [
        "Your Kiro login expires in 4 min and ki2api cannot renew it. Open Kiro and sign in."
    ]
    assert notices(expiring, expiring, EN, NOW, told) == []
    renewable = running(token=TokenStatus(TokenHealth.EXPIRING, NOW + timedelta(minutes=4), renewable=True))
    assert notices(running(), renewable, EN, NOW, set()) == []


def test_a_suspended_account_and_used_up_credits_are_told() -> None:
    state = AppState(running())
    reporter = StateReporter(state, clock=lambda: NOW)
    said = "Your User ID (d-123) temporarily is suspended. We've locked your account as a security precaution."
    before = state.snapshot()
    reporter.request_finished(False, said, RequestRecord(time=NOW, status=403, error_kind="kiro_forbidden", error=said))
    assert notices(before, state.snapshot(), EN, NOW, set()) == [
        f"Kiro suspended your account; ki2api stopped using it. Kiro said: {said}"
    ]
    before = state.snapshot()
    reporter.request_finished(True, "", RequestRecord(time=NOW))
    assert state.snapshot().account_alert == ""
    quota_said = "Your Kiro quota is used up for this month. Kiro said: You have reached the limit."
    record = RequestRecord(time=NOW, status=402, error_kind="insufficient_quota", error=quota_said)
    reporter.request_finished(False, quota_said, record)
    assert notices(before, state.snapshot(), EN, NOW, set()) == [f"Your Kiro credits are used up: {quota_said}"]


def test_metered_credits_count_against_the_plan_until_kiro_reports_again() -> None:
    state = AppState(with_quota(790))
    reporter = StateReporter(state, clock=lambda: NOW)
    reporter.request_finished(True, "", RequestRecord(time=NOW, credits=12.5))
    quota = state.snapshot().quota
    assert quota is not None and quota.used == 802.5


def test_the_tray_notifies_once_and_the_switch_silences_it(tmp_path: Path) -> None:
    tray, state, icon = make_tray(with_quota(700))
    tray._setup(icon)  # subscribes to the state the way run() does
    try:
        state.update(quota=with_quota(820).quota)
        state.update(quota=with_quota(830).quota)
        wait_for(lambda: icon.notifications)
        assert [message for _, message in icon.notifications] == ["80% of your Kiro credits are used (820 of 1,000)."]
        assert "Notifications" in texts(tray)
        tray.settings = replace(tray.settings, app_paths=replace(tray.settings.app_paths, config_dir=tmp_path))
        tray.toggle_notifications()
        assert json.loads((tmp_path / "config.json").read_text())["notifications"] is False
        state.update(quota=with_quota(990).quota)
        state.update(token=TokenStatus(TokenHealth.REFRESH_FAILED))
        assert len(icon.notifications) == 1  # silenced
    finally:
        tray._stop_refreshing()


def test_about_tells_the_version() -> None:
    tray, _, icon = make_tray()
    assert f"About ki2api {__version__}" in texts(tray)
    tray.about()
    wait_for(lambda: icon.notifications)
    assert icon.notifications[-1][1].startswith(f"ki2api {__version__} (Python ")


class StartingDesktop(FakeDesktop):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[Path] = []

    def start(self, program: Path) -> None:
        self.started.append(program)


def test_open_kiro_to_sign_in_appears_only_without_a_usable_login(tmp_path: Path) -> None:
    kiro = tmp_path / "kiro"
    desktop = StartingDesktop()
    missing = running(token=TokenStatus(TokenHealth.MISSING))
    tray, state, _ = make_tray(missing, desktop=desktop)
    tray._find_kiro = lambda: kiro
    assert "Open Kiro to sign in" in texts(tray)
    tray.open_kiro()
    assert desktop.started == [kiro]
    tray._find_kiro = lambda: None
    tray.open_kiro()
    assert desktop.opened == ["https://kiro.dev/downloads/"]  # not installed: its download page
    state.update(token=TokenStatus(TokenHealth.VALID, NOW + timedelta(hours=1)))
    assert "Open Kiro to sign in" not in texts(tray)
    state.update(token=TokenStatus(TokenHealth.EXPIRED, NOW - timedelta(minutes=1), renewable=True))
    assert "Open Kiro to sign in" not in texts(tray)  # ki2api renews it by itself

"""The tray menu, icon and notifications, with pystray's dummy backend and a recording Icon subclass."""

from __future__ import annotations

import ctypes
import functools
import json
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pystray
import pytest
from pystray import _base as pystray_base

from ki2api_tray import __version__
from ki2api_tray.config import DEFAULT_API_KEY, Settings
from ki2api_tray.desktop import shell as shell_module
from ki2api_tray.desktop import tray as tray_module
from ki2api_tray.desktop.icons import status_icon
from ki2api_tray.desktop.shell import DesktopError
from ki2api_tray.desktop.tray import TrayUI, can_show_tray
from ki2api_tray.desktop.ui_thread import UiThread
from ki2api_tray.state import AppState, Phase, Quota, Status, TokenHealth, TokenStatus
from ki2api_tray.wording import Level, level_of, port_in_use_message

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
SEP = "- - - -"
ADDRESS = "127.0.0.1:8989"


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class RecordingIcon(pystray_base.Icon):  # type: ignore[misc]
    """A pystray backend that records what a real one would draw (tray-and-packaging.md §1.9)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.menus: list[list[str]] = []
        self.titles: list[str] = []
        self.images: list[Any] = []
        self.notifications: list[tuple[str | None, str]] = []
        self.events: list[str] = []
        self._stop_event = threading.Event()

    def _show(self) -> None:
        self.events.append("show")

    def _hide(self) -> None:
        self.events.append("hide")

    def _update_icon(self) -> None:
        self.images.append(self.icon)
        self._icon_valid = True

    def _update_title(self) -> None:
        self.titles.append(self.title)

    def _update_menu(self) -> None:
        self.menus.append([item.text for item in self.menu])

    def _notify(self, message: str, title: str | None = None) -> None:
        self.notifications.append((title, message))

    def _remove_notification(self) -> None:
        pass

    def _run(self) -> None:
        self._mark_ready()
        self._stop_event.wait()

    def _run_detached(self) -> None:
        self._mark_ready()

    def _stop(self) -> None:
        self.events.append("stop")
        self._stop_event.set()


class FakeService:
    def __init__(self, state: AppState, start_result: Status | None = None) -> None:
        self.state = state
        self.calls: list[str] = []
        self.start_result = start_result or Status(
            phase=Phase.RUNNING, address=ADDRESS, token=TokenStatus(TokenHealth.VALID, NOW + timedelta(minutes=47))
        )

    def start(self) -> bool:
        self.calls.append("start")
        self.state.update(phase=Phase.STARTING)
        result = self.start_result
        self.state.apply(lambda s: replace(s, phase=result.phase, address=result.address, last_error=result.last_error))
        self.state.update(token=result.token)
        return result.phase is Phase.RUNNING

    def stop(self, timeout: float = 5.0) -> None:
        self.calls.append("stop")
        self.state.update(phase=Phase.STOPPED, address="")

    def close(self) -> None:
        self.calls.append("close")
        self.state.update(phase=Phase.STOPPED, address="")


class FakeDesktop:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.copied: list[str] = []
        self.opened: list[str] = []

    def copy(self, text: str) -> None:
        if self.fail:
            raise DesktopError("no clipboard tool found")
        self.copied.append(text)

    def open(self, target: str | Path) -> None:
        if self.fail:
            raise DesktopError("xdg-open is missing")
        self.opened.append(str(target))


class FakeAutostart:
    def __init__(self, enabled: bool = False, fail: bool = False) -> None:
        self.enabled = enabled
        self.fail = fail

    def is_enabled(self) -> bool:
        return self.enabled

    def enable(self) -> None:
        if self.fail:
            raise PermissionError("registry is locked")
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False


def running(**changes: Any) -> Status:
    base = Status(
        phase=Phase.RUNNING,
        address=ADDRESS,
        token=TokenStatus(TokenHealth.VALID, NOW + timedelta(minutes=47), auth_kind="social"),
        requests_today=12,
        errors_today=1,
        quota=Quota("KIRO FREE", used=12.5, limit=50, resets_at=datetime(2026, 12, 1, 12, tzinfo=timezone.utc)),
    )
    return replace(base, **changes)


def make_tray(
    status: Status | None = None,
    *,
    language: str = "en",
    desktop: FakeDesktop | None = None,
    autostart: FakeAutostart | None = None,
    service: FakeService | None = None,
    refresh_interval: float = 0.05,
) -> tuple[TrayUI, AppState, RecordingIcon]:
    state = AppState(status or running())
    tray = TrayUI(
        service or FakeService(state),
        state,
        Settings(),
        icon_cls=RecordingIcon,
        desktop=desktop or FakeDesktop(),
        autostart=autostart or FakeAutostart(),
        language=language,
        refresh_interval=refresh_interval,
        clock=lambda: NOW,
    )
    if service is not None:
        service.state = state
    assert isinstance(tray.icon, RecordingIcon)
    return tray, state, tray.icon


def texts(tray: TrayUI) -> list[str]:
    return [item.text for item in tray.icon.menu]


def item_named(tray: TrayUI, prefix: str) -> Any:
    return next(item for item in tray.icon.menu if item.text.startswith(prefix))


# --- menu text for every state ---------------------------------------------------------------------------


def test_tray_menu_running_healthy_full_layout() -> None:
    tray, _, _ = make_tray()
    assert texts(tray) == [
        "● ki2api — running on 127.0.0.1:8989",
        "Token: valid, expires in 47 min",
        "Requests today: 12 · errors: 1",
        "Quota: 37.5 of 50 left · resets 1 Dec 2026",
        SEP,
        "Stop server",
        "Copy base URL (http://127.0.0.1:8989/v1)",
        "Copy API key",
        "Set up a client",
        "Open status page",
        SEP,
        "Open logs folder",
        "Open config",
        "Start at login",
        "Notifications",
        SEP,
        f"About ki2api {__version__}",
        "Quit ki2api",
    ]


@pytest.mark.parametrize(
    ("status", "language", "expected_head"),
    [
        (
            running(token=TokenStatus(TokenHealth.EXPIRING, NOW + timedelta(minutes=3))),
            "en",
            ["● ki2api — running on 127.0.0.1:8989", "Token: expires in 3 min"],
        ),
        (
            running(token=TokenStatus(TokenHealth.VALID, NOW + timedelta(hours=3, minutes=12))),
            "en",
            ["● ki2api — running on 127.0.0.1:8989", "Token: valid, expires in 3 h 12 min"],
        ),
        (running(token=TokenStatus(TokenHealth.VALID)), "en", ["● ki2api — running on 127.0.0.1:8989", "Token: valid"]),
        (
            running(token=TokenStatus(TokenHealth.EXPIRED, NOW - timedelta(minutes=5))),
            "en",
            ["● ki2api — running on 127.0.0.1:8989", "Token: expired — log in to Kiro"],
        ),
        (
            running(token=TokenStatus(TokenHealth.EXPIRED, NOW - timedelta(minutes=5), renewable=True)),
            "en",
            ["● ki2api — running on 127.0.0.1:8989", "Token: expired — renewing it"],
        ),
        (
            running(token=TokenStatus(TokenHealth.MISSING)),
            "en",
            ["● ki2api — running on 127.0.0.1:8989", "Token: file not found"],
        ),
        (
            running(token=TokenStatus(TokenHealth.UNREADABLE)),
            "en",
            ["● ki2api — running on 127.0.0.1:8989", "Token: file unreadable"],
        ),
        (
            running(token=TokenStatus(TokenHealth.REFRESH_FAILED)),
            "en",
            ["● ki2api — running on 127.0.0.1:8989", "Token: refresh failed — log in to Kiro"],
        ),
        (
            running(phase=Phase.STOPPED, address=""),
            "en",
            ["○ ki2api — stopped", "Token: valid, expires in 47 min"],
        ),
        (
            running(phase=Phase.ERROR, address="", last_error=port_in_use_message(8989)),
            "en",
            ["● ki2api — port 8989 in use", "Token: valid, expires in 47 min"],
        ),
        (
            running(phase=Phase.ERROR, address="", last_error="The server stopped unexpectedly: boom"),
            "en",
            ["● ki2api — error: The server stopped unexpectedly: boom", "Token: valid, expires in 47 min"],
        ),
        (running(phase=Phase.STARTING, address=""), "en", ["● ki2api — starting…", "Token: valid, expires in 47 min"]),
        (
            running(),
            "zh",
            ["● ki2api — 运行中：127.0.0.1:8989", "令牌：有效，47 分钟后过期", "今日请求：12 · 错误：1"],
        ),
        (running(phase=Phase.STOPPED, address=""), "zh", ["○ ki2api — 已停止"]),
        (
            running(phase=Phase.ERROR, address="", last_error=port_in_use_message(8989)),
            "zh",
            ["● ki2api — 端口 8989 已被占用"],
        ),
        (
            running(token=TokenStatus(TokenHealth.EXPIRED)),
            "zh",
            ["● ki2api — 运行中：127.0.0.1:8989", "令牌：已过期 — 请重新登录 Kiro"],
        ),
        (
            running(token=TokenStatus(TokenHealth.MISSING)),
            "zh",
            ["● ki2api — 运行中：127.0.0.1:8989", "令牌：未找到文件"],
        ),
    ],
)
def test_tray_menu_status_and_token_lines(status: Status, language: str, expected_head: list[str]) -> None:
    tray, _, _ = make_tray(status, language=language)
    assert texts(tray)[: len(expected_head)] == expected_head


@pytest.mark.parametrize(
    ("status", "language", "requests", "quota"),
    [
        (running(), "en", "Requests today: 12 · errors: 1", "Quota: 37.5 of 50 left · resets 1 Dec 2026"),
        (running(errors_today=0, requests_today=1284, quota=None), "en", "Requests today: 1,284", "Quota: unknown"),
        (
            running(quota=Quota(used=48, limit=50)),
            "en",
            "Requests today: 12 · errors: 1",
            "Quota: 2 of 50 left",
        ),
        (running(), "zh", "今日请求：12 · 错误：1", "额度：剩余 37.5 / 50 · 2026年12月1日重置"),
        (running(quota=None), "zh", "今日请求：12 · 错误：1", "额度：未知"),
    ],
)
def test_tray_menu_requests_and_quota_lines(status: Status, language: str, requests: str, quota: str) -> None:
    tray, _, _ = make_tray(status, language=language)
    assert texts(tray)[2:4] == [requests, quota]


@pytest.mark.parametrize(
    ("status", "toggle"),
    [
        (running(), "Stop server"),
        (running(phase=Phase.STARTING, address=""), "Stop server"),
        (running(phase=Phase.STOPPED, address=""), "Start server"),
        (running(phase=Phase.ERROR, address="", last_error=port_in_use_message(8989)), "Start server"),
    ],
)
def test_tray_menu_toggle_label_follows_phase(status: Status, toggle: str) -> None:
    tray, _, _ = make_tray(status)
    item = item_named(tray, toggle)
    assert not item.default  # a stray left click on Windows must never stop the server


def test_tray_menu_zh_actions_are_translated() -> None:
    tray, _, _ = make_tray(language="zh")
    assert texts(tray)[5:] == [
        "停止服务",
        "复制接口地址（http://127.0.0.1:8989/v1）",
        "复制 API 密钥",
        "配置客户端",
        "打开状态页",
        SEP,
        "打开日志文件夹",
        "打开配置文件",
        "登录时自动启动",
        "通知",
        SEP,
        f"关于 ki2api {__version__}",
        "退出 ki2api",
    ]


def test_tray_menu_info_lines_are_disabled_and_actions_enabled() -> None:
    tray, _, _ = make_tray()
    items = [item for item in tray.icon.menu if item is not pystray.Menu.SEPARATOR]
    assert [item.enabled for item in items[:4]] == [False] * 4
    assert all(item.enabled for item in items[4:])


def test_tray_menu_status_page_disabled_while_stopped() -> None:
    tray, state, _ = make_tray(running(phase=Phase.STOPPED, address=""))
    assert not item_named(tray, "Open status page").enabled
    state.update(phase=Phase.RUNNING, address=ADDRESS)
    assert item_named(tray, "Open status page").enabled


def test_tray_menu_menu_text_reads_the_latest_state() -> None:
    tray, state, _ = make_tray()
    state.update(requests_today=13, errors_today=0)
    assert texts(tray)[2] == "Requests today: 13"


def test_tray_menu_autostart_checkbox_reads_the_real_state_each_time() -> None:
    autostart = FakeAutostart(enabled=False)
    tray, _, _ = make_tray(autostart=autostart)
    assert item_named(tray, "Start at login").checked is False
    autostart.enabled = True  # changed outside the app (e.g. Task Manager)
    assert item_named(tray, "Start at login").checked is True


@pytest.mark.parametrize(
    ("status", "level"),
    [
        (running(), Level.OK),
        (running(token=TokenStatus(TokenHealth.EXPIRING, NOW + timedelta(minutes=3))), Level.WARN),
        (running(quota=Quota(used=48, limit=50)), Level.WARN),
        (running(token=TokenStatus(TokenHealth.EXPIRED)), Level.BAD),
        (running(token=TokenStatus(TokenHealth.EXPIRED, renewable=True)), Level.WARN),
        (running(token=TokenStatus(TokenHealth.REFRESH_FAILED)), Level.BAD),
        (running(token=TokenStatus(TokenHealth.MISSING)), Level.BAD),
        (running(phase=Phase.ERROR, last_error="x"), Level.BAD),
        (running(phase=Phase.STOPPED), Level.OFF),
    ],
)
def test_tray_icon_level_per_state(status: Status, level: Level) -> None:
    assert level_of(status) is level
    tray, _, icon = make_tray(status)
    assert icon.icon is status_icon(level)


def test_tray_icons_differ_per_level_and_are_64px_rgba() -> None:
    images = [status_icon(level) for level in Level]
    assert all(image.size == (64, 64) and image.mode == "RGBA" for image in images)
    assert len({image.tobytes() for image in images}) == len(Level)


def test_tray_tooltip_fits_windows_limit() -> None:
    tray, _, icon = make_tray(running(phase=Phase.ERROR, last_error="x" * 500))
    assert len(icon.title) <= 120
    assert icon.title.startswith("ki2api — error:")


# --- actions ----------------------------------------------------------------------------------------------


def test_tray_action_copy_base_url() -> None:
    desktop = FakeDesktop()
    tray, _, icon = make_tray(desktop=desktop)
    item_named(tray, "Copy base URL")(icon)
    assert desktop.copied == ["http://127.0.0.1:8989/v1"]


def test_tray_action_copy_api_key() -> None:
    desktop = FakeDesktop()
    tray, _, icon = make_tray(desktop=desktop)
    item_named(tray, "Copy API key")(icon)
    assert desktop.copied == [DEFAULT_API_KEY]


def test_tray_action_copy_failure_notifies_without_the_key() -> None:
    tray, _, icon = make_tray(desktop=FakeDesktop(fail=True))
    item_named(tray, "Copy API key")(icon)
    assert icon.notifications == [("ki2api", "Could not copy to the clipboard: no clipboard tool found")]
    assert DEFAULT_API_KEY not in repr(icon.notifications)


def test_tray_action_open_status_page() -> None:
    desktop = FakeDesktop()
    tray, _, icon = make_tray(desktop=desktop)
    item_named(tray, "Open status page")(icon)
    assert desktop.opened == ["http://127.0.0.1:8989/"]


def test_tray_action_open_logs_folder_creates_it() -> None:
    desktop = FakeDesktop()
    tray, _, icon = make_tray(desktop=desktop)
    item_named(tray, "Open logs folder")(icon)
    log_dir = tray.settings.app_paths.log_dir
    assert desktop.opened == [str(log_dir)]
    assert log_dir.is_dir()


def test_tray_action_open_config_writes_a_starter_file_first() -> None:
    desktop = FakeDesktop()
    tray, _, icon = make_tray(desktop=desktop)
    item_named(tray, "Open config")(icon)
    config_file = tray.settings.app_paths.config_file
    assert desktop.opened == [str(config_file)]
    assert json.loads(config_file.read_text(encoding="utf-8"))["port"] == 8989


def test_tray_action_open_failure_notifies() -> None:
    tray, _, icon = make_tray(desktop=FakeDesktop(fail=True))
    item_named(tray, "Open logs folder")(icon)
    assert len(icon.notifications) == 1
    assert "xdg-open is missing" in icon.notifications[0][1]


def test_tray_action_autostart_toggles() -> None:
    autostart = FakeAutostart()
    tray, _, icon = make_tray(autostart=autostart)
    item_named(tray, "Start at login")(icon)
    assert autostart.enabled
    item_named(tray, "Start at login")(icon)
    assert not autostart.enabled


def test_tray_action_autostart_failure_notifies() -> None:
    tray, _, icon = make_tray(autostart=FakeAutostart(fail=True))
    item_named(tray, "Start at login")(icon)
    assert icon.notifications == [("ki2api", "Could not change “Start at login”: registry is locked")]


def test_tray_action_stop_server_when_running() -> None:
    state_holder = AppState()
    service = FakeService(state_holder)
    tray, state, icon = make_tray(service=service)
    item_named(tray, "Stop server")(icon)
    wait_for(lambda: service.calls == ["stop"])
    assert state.snapshot().phase is Phase.STOPPED


def test_tray_action_start_server_when_stopped() -> None:
    service = FakeService(AppState())
    tray, state, icon = make_tray(running(phase=Phase.STOPPED, address=""), service=service)
    item_named(tray, "Start server")(icon)
    wait_for(lambda: service.calls == ["start"])
    assert state.snapshot().phase is Phase.RUNNING


def test_tray_action_left_click_opens_the_status_page() -> None:
    service = FakeService(AppState())
    desktop = FakeDesktop()
    tray, _, icon = make_tray(running(), service=service, desktop=desktop)
    icon.menu(icon)  # what pystray runs on a left click (win32/gtk)
    assert desktop.opened == ["http://127.0.0.1:8989/"]
    assert service.calls == []


def test_tray_action_quit_stops_service_hides_and_stops_icon() -> None:
    service = FakeService(AppState())
    tray, _, icon = make_tray(service=service)
    icon._visible = True
    icon._running = True
    icon._setup_thread = threading.current_thread()
    item_named(tray, "Quit")(icon)
    assert service.calls == ["close"]
    assert icon.events == ["hide", "stop"]


# --- lifecycle with the recording backend ------------------------------------------------------------------


@pytest.fixture
def running_tray() -> Iterator[Callable[..., tuple[TrayUI, AppState, RecordingIcon, FakeService]]]:
    started: list[tuple[TrayUI, threading.Thread]] = []

    def launch(
        initial: Status | None = None, start_result: Status | None = None
    ) -> tuple[TrayUI, AppState, RecordingIcon, FakeService]:
        service = FakeService(AppState(), start_result)
        tray, state, icon = make_tray(initial or Status(), service=service)
        thread = threading.Thread(target=tray.run, daemon=True)
        thread.start()
        started.append((tray, thread))
        return tray, state, icon, service

    yield launch
    for tray, thread in started:
        tray.quit()
        thread.join(timeout=10)
        assert not thread.is_alive(), "tray.run() did not return after quit"


def test_tray_run_setup_shows_icon_and_starts_service(running_tray: Any) -> None:
    tray, state, icon, service = running_tray()
    wait_for(lambda: icon.menus and icon.menus[-1][0] == "● ki2api — running on 127.0.0.1:8989")
    assert "show" in icon.events
    assert service.calls == ["start"]
    wait_for(lambda: icon.images and icon.images[-1] is status_icon(Level.OK))
    assert icon.titles[-1] == "ki2api — running on 127.0.0.1:8989\nToken: valid, expires in 47 min"


def test_tray_run_menu_follows_state_changes(running_tray: Any) -> None:
    tray, state, icon, _ = running_tray()
    wait_for(lambda: icon.menus and icon.menus[-1][0].startswith("● ki2api — running"))
    state.update(requests_today=5, errors_today=0)
    wait_for(lambda: icon.menus[-1][2] == "Requests today: 5")


def test_tray_run_refreshes_are_debounced(running_tray: Any) -> None:
    tray, state, icon, _ = running_tray()
    tray.refresh_interval = 0.5
    wait_for(lambda: icon.menus and icon.menus[-1][0].startswith("● ki2api — running"))
    # Let the start-up refresh window pass, so the burst below starts a fresh one.
    wait_for(lambda: time.monotonic() - tray._last_refresh > tray.refresh_interval)
    before = len(icon.menus)
    for n in range(1, 31):
        state.update(requests_today=n)
    wait_for(lambda: icon.menus[-1][2] == "Requests today: 30")
    assert len(icon.menus) - before <= 3


def test_tray_run_first_run_without_token_explains_where_it_looked(running_tray: Any) -> None:
    missing = Status(phase=Phase.RUNNING, address=ADDRESS, token=TokenStatus(TokenHealth.MISSING))
    tray, _, icon, _ = running_tray(start_result=missing)
    wait_for(lambda: icon.notifications)
    title, message = icon.notifications[0]
    assert title == "Kiro login not found"
    assert "kiro-auth-token.json" in message and "Open Kiro and sign in" in message


def test_tray_run_port_in_use_notifies(running_tray: Any) -> None:
    busy = Status(phase=Phase.ERROR, last_error=port_in_use_message(8989), token=TokenStatus(TokenHealth.VALID))
    tray, _, icon, _ = running_tray(start_result=busy)
    wait_for(lambda: icon.notifications)
    assert icon.notifications == [
        ("ki2api", "Port 8989 is already in use. Quit the other program or change the port in config.json.")
    ]
    wait_for(lambda: icon.menus and icon.menus[-1][0] == "● ki2api — port 8989 in use")
    wait_for(lambda: icon.images and icon.images[-1] is status_icon(Level.BAD))


def test_tray_run_unexpected_stop_notifies(running_tray: Any) -> None:
    tray, state, icon, _ = running_tray()
    wait_for(lambda: state.snapshot().phase is Phase.RUNNING)
    state.update(phase=Phase.ERROR, address="", last_error="The server stopped unexpectedly: boom")
    wait_for(lambda: icon.notifications)
    assert "stopped unexpectedly" in icon.notifications[-1][1]


@pytest.mark.parametrize(
    ("health", "message"),
    [
        (TokenHealth.EXPIRED, "Your Kiro login has expired. Open Kiro and sign in again."),
        (TokenHealth.REFRESH_FAILED, "Kiro refused to renew the login. Open Kiro and sign in again."),
    ],
)
def test_tray_run_token_trouble_notifies_once(running_tray: Any, health: TokenHealth, message: str) -> None:
    tray, state, icon, _ = running_tray()
    wait_for(lambda: state.snapshot().phase is Phase.RUNNING)
    state.update(token=TokenStatus(health))
    state.update(requests_today=3)  # an unrelated change must not repeat the notification
    wait_for(lambda: icon.menus and icon.menus[-1][2].startswith("Requests today: 3"))
    assert [n for n in icon.notifications if n[1] == message] == [("ki2api", message)]


def test_tray_run_renewable_expiry_does_not_alarm(running_tray: Any) -> None:
    # A laptop waking after the token expired: the keeper renews it within a minute, so no "log in" alarm.
    tray, state, icon, _ = running_tray()
    wait_for(lambda: state.snapshot().phase is Phase.RUNNING)
    state.update(token=TokenStatus(TokenHealth.EXPIRED, renewable=True))
    state.update(requests_today=4)
    wait_for(lambda: icon.menus and icon.menus[-1][2].startswith("Requests today: 4"))
    assert icon.notifications == []


def test_tray_run_ignores_gerror_from_the_gtk_backend_on_stop() -> None:
    class GError(Exception):
        pass

    class GtkLikeIcon(RecordingIcon):
        def _run(self) -> None:
            super()._run()
            raise GError("org.freedesktop.DBus.Error.ServiceUnknown")

    state = AppState()
    service = FakeService(state)
    tray = TrayUI(service, state, Settings(), icon_cls=GtkLikeIcon, desktop=FakeDesktop(), autostart=FakeAutostart())
    thread = threading.Thread(target=tray.run, daemon=True)
    thread.start()
    wait_for(lambda: service.calls == ["start"])
    tray.quit()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_tray_run_other_errors_propagate() -> None:
    class BrokenIcon(RecordingIcon):
        def _start_setup(self, setup: Any) -> None:
            pass  # a backend that fails before it is ready never runs setup

        def _run(self) -> None:
            raise RuntimeError("no tray host")

    state = AppState()
    service = FakeService(state)
    tray = TrayUI(service, state, Settings(), icon_cls=BrokenIcon, desktop=FakeDesktop(), autostart=FakeAutostart())
    with pytest.raises(RuntimeError, match="no tray host"):
        tray.run()
    assert service.calls[-1] == "close"  # the server does not outlive a failed tray


def test_tray_show_already_running_notifies() -> None:
    tray, _, icon = make_tray()
    tray.show_already_running()
    assert icon.notifications == [("ki2api", "ki2api is already running — find it in the tray.")]


# --- platform plumbing --------------------------------------------------------------------------------------


def test_ui_call_on_macos_hops_to_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    scheduled: list[tuple[Any, tuple[Any, ...]]] = []
    helper = types.SimpleNamespace(callAfter=lambda fn, *args: scheduled.append((fn, args)))
    package = types.ModuleType("PyObjCTools")
    package.AppHelper = helper  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PyObjCTools", package)
    monkeypatch.setitem(sys.modules, "PyObjCTools.AppHelper", helper)  # type: ignore[arg-type]
    ui = UiThread(object(), platform="darwin")
    called: list[int] = []
    ui.call(called.append, 1)
    assert called == []
    assert scheduled == [(called.append, (1,))]


def test_ui_call_elsewhere_runs_directly() -> None:
    tray, _, _ = make_tray()
    called: list[int] = []
    tray.ui_call(called.append, 1)
    assert called == [1]


class FakeWin32Icon(RecordingIcon):
    """pystray's win32 backend as far as threads go: its window and message loop live on the thread that runs
    the icon, and window messages posted from any thread are handled there through `_message_handlers`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._message_handlers: dict[int, Callable[[int, int], int]] = {}
        self._hwnd: int | None = None
        self._messages: queue.Queue[int | None] = queue.Queue()
        self.threads: dict[str, set[str]] = {"menu": set(), "title": set(), "notify": set()}

    def post(self, hwnd: int, message: int) -> bool:  # PostMessageW
        if hwnd != self._hwnd:
            return False
        self._messages.put(message)
        return True

    def _update_menu(self) -> None:
        self.threads["menu"].add(threading.current_thread().name)
        super()._update_menu()

    def _update_title(self) -> None:
        self.threads["title"].add(threading.current_thread().name)
        super()._update_title()

    def _notify(self, message: str, title: str | None = None) -> None:
        self.threads["notify"].add(threading.current_thread().name)
        super()._notify(message, title)

    def _run(self) -> None:
        self._hwnd = 0x1234  # pystray creates the window here, on the loop's thread
        self._mark_ready()
        while (message := self._messages.get()) is not None:
            self._message_handlers[message](0, 0)
        self._hwnd = None

    def _stop(self) -> None:
        self.events.append("stop")
        self._messages.put(None)


def test_tray_on_windows_changes_menu_title_and_notifications_only_on_the_icons_thread() -> None:
    service = FakeService(AppState())
    state = AppState(Status())
    icons: list[FakeWin32Icon] = []
    tray = TrayUI(
        service,
        state,
        Settings(),
        icon_cls=FakeWin32Icon,
        desktop=FakeDesktop(),
        autostart=FakeAutostart(),
        language="en",
        refresh_interval=0.01,
        clock=lambda: NOW,
        ui_post=lambda hwnd, message: icons[0].post(hwnd, message),
    )
    icon = tray.icon
    assert isinstance(icon, FakeWin32Icon)
    icons.append(icon)
    service.state = state
    loop = threading.Thread(target=tray.run, name="icon-loop", daemon=True)
    loop.start()
    wait_for(lambda: icon.menus and icon.menus[-1][0].startswith("● ki2api — running"))
    # Changes from other threads: the timer, the watcher, request handlers, the service.
    writers = [threading.Thread(target=state.update, kwargs={"requests_today": n}, name=f"w{n}") for n in range(5)]
    for writer in writers:
        writer.start()
    state.update(phase=Phase.ERROR, last_error=port_in_use_message(8989))  # notifies from this thread
    wait_for(lambda: "port 8989 in use" in icon.menus[-1][0] and icon.notifications)

    tray.quit()
    loop.join(timeout=10)

    assert not loop.is_alive()
    assert icon.threads == {"menu": {"icon-loop"}, "title": {"icon-loop"}, "notify": {"icon-loop"}}


def test_ui_thread_kind_per_backend() -> None:
    x11_like = types.SimpleNamespace(_message_handlers={})  # pystray's xorg Icon: a handler dict, no window
    assert UiThread(x11_like, platform="linux").kind == "direct"
    win32_like = types.SimpleNamespace(_message_handlers={}, _hwnd=None)
    assert UiThread(win32_like, platform="win32").kind == "window message"
    assert UiThread(object(), platform="darwin").kind == "appkit"


def test_tray_ui_calls_after_the_window_is_gone_are_dropped() -> None:
    posted: list[int] = []
    ui = UiThread(types.SimpleNamespace(_message_handlers={}, _hwnd=0x99), post_message=lambda h, m: False)
    ui.call(posted.append, 1)
    ui.call(posted.append, 2)
    assert posted == []


def test_tray_asks_to_move_a_translocated_app(running_tray: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tray_module, "placement_problem", lambda: "macOS is running ki2api from a temporary copy")
    tray, state, icon, _ = running_tray()
    wait_for(lambda: any("Move ki2api-tray.app to the Applications folder" in m for _, m in icon.notifications))


def test_tray_left_click_never_runs_the_disabled_default_item() -> None:
    desktop = FakeDesktop()
    tray, state, icon = make_tray(Status(phase=Phase.STOPPED), desktop=desktop)
    icon.menu(icon)  # what pystray's win32 backend runs on WM_LBUTTONUP, enabled or not
    assert desktop.opened == []
    state.update(phase=Phase.RUNNING, address=ADDRESS)
    icon.menu(icon)
    assert desktop.opened == ["http://127.0.0.1:8989/"]


class FakeClipboardDlls:
    """user32 and kernel32 as far as the clipboard goes, with real memory behind GlobalLock."""

    def __init__(self) -> None:
        self.memory = ctypes.create_string_buffer(1024)
        self.opened_with: list[int | None] = []
        self.owner: int | None = None
        self.data: bytes = b""
        self.closed = 0

    def OpenClipboard(self, hwnd: int | None) -> int:  # noqa: N802 - Win32 names
        self.opened_with.append(hwnd)
        return 1

    def EmptyClipboard(self) -> int:  # noqa: N802
        self.owner = self.opened_with[-1]  # EmptyClipboard makes the opening window the owner
        return 1

    def GlobalAlloc(self, flags: int, size: int) -> int:  # noqa: N802
        self.size = size
        return 7

    def GlobalLock(self, handle: int) -> int:  # noqa: N802
        return ctypes.addressof(self.memory)

    def GlobalUnlock(self, handle: int) -> int:  # noqa: N802
        return 0

    def GlobalFree(self, handle: int) -> int:  # noqa: N802
        return 0

    def SetClipboardData(self, fmt: int, handle: int) -> int:  # noqa: N802
        if self.owner is None:  # what Windows does after OpenClipboard(NULL)
            return 0
        self.data = self.memory.raw[: self.size]
        return handle

    def CloseClipboard(self) -> int:  # noqa: N802
        self.closed += 1
        return 1


def test_tray_copy_on_windows_opens_the_clipboard_with_the_icons_window(monkeypatch: pytest.MonkeyPatch) -> None:
    dlls = FakeClipboardDlls()
    monkeypatch.setattr(shell_module, "_win32_dlls", lambda: (dlls, dlls))
    monkeypatch.setattr(tray_module, "Desktop", functools.partial(shell_module.Desktop, platform="win32"))
    state = AppState(running())
    tray = TrayUI(FakeService(state), state, Settings(), icon_cls=FakeWin32Icon, autostart=FakeAutostart())
    tray.icon._hwnd = 0x5150  # set by pystray when its loop starts

    item_named(tray, "Copy base URL")(tray.icon)

    assert dlls.opened_with == [0x5150]
    assert dlls.data == "http://127.0.0.1:8989/v1".encode("utf-16-le") + b"\x00\x00"
    assert dlls.closed == 1


@pytest.mark.parametrize(
    ("environ", "platform", "ok", "reason_part"),
    [
        ({}, "linux", False, "DISPLAY"),
        ({"DISPLAY": ":0", "PYSTRAY_BACKEND": "dummy"}, "linux", False, "dummy"),
        ({"DISPLAY": ":0"}, "linux", True, ""),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True, ""),
        ({}, "win32", True, ""),
        ({}, "darwin", True, ""),
    ],
)
def test_can_show_tray_per_environment(environ: dict[str, str], platform: str, ok: bool, reason_part: str) -> None:
    result, reason = can_show_tray(environ, platform)
    assert result is ok
    assert reason_part in reason
    assert "\n" not in reason


def test_can_show_tray_when_pystray_import_fails_with_any_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuse:
        def find_spec(self, name: str, *args: Any) -> None:
            if name == "pystray":
                raise RuntimeError("Can't connect to display")  # what Xlib does, instead of ImportError

    monkeypatch.delitem(sys.modules, "pystray")
    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])
    result, reason = can_show_tray({"DISPLAY": ":0"}, "linux")
    assert result is False
    assert "Can't connect to display" in reason


# --- status page ---------------------------------------------------------------------------------------------


def test_status_page_shows_what_the_menu_shows() -> None:
    from ki2api_tray.api.status_page import render_status_page

    page = render_status_page(running(), base_url="http://127.0.0.1:8989/v1", language="en", now=NOW)
    for text in (
        "ki2api — running on 127.0.0.1:8989",
        "Token: valid, expires in 47 min",
        "Requests today: 12 · errors: 1",
        "Quota: 37.5 of 50 left · resets 1 Dec 2026",
        "http://127.0.0.1:8989/v1",
    ):
        assert text in page
    assert "This page updates itself every 5 seconds." in page  # live, without a full reload


def test_status_page_has_no_external_assets_and_hides_a_custom_key() -> None:
    from ki2api_tray.api.status_page import render_status_page

    page = render_status_page(running(), base_url="http://127.0.0.1:8989/v1", language="en", now=NOW)
    assert DEFAULT_API_KEY not in page  # no public key given: a custom one is set, and it stays hidden
    assert "config.json" in page  # says where the key is instead
    for external in ("<link", "src=", "url(", "@import", 'fetch("http'):
        assert external not in page
    shown = render_status_page(running(), base_url="http://127.0.0.1:8989/v1", language="en", now=NOW, public_key="k-1")
    assert "API key: k-1 (the public default" in shown


def test_status_page_escapes_error_text() -> None:
    from ki2api_tray.api.status_page import render_status_page

    status = running(phase=Phase.ERROR, last_error="<script>alert(1)</script>")
    page = render_status_page(status, base_url="http://127.0.0.1:8989/v1", language="en", now=NOW)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_status_page_in_chinese() -> None:
    from ki2api_tray.api.status_page import render_status_page

    page = render_status_page(running(quota=None), base_url="http://127.0.0.1:8989/v1", language="zh", now=NOW)
    assert '<html lang="zh-CN">' in page
    assert "令牌：有效，47 分钟后过期" in page and "额度：未知" in page


# --- desktop plumbing ------------------------------------------------------------------------------------------


def _fake_tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)


def test_desktop_copy_uses_an_installed_clipboard_tool(tmp_path: Path) -> None:
    from ki2api_tray.desktop.shell import Desktop

    out = tmp_path / "clipboard.txt"
    _fake_tool(tmp_path / "bin", "xclip", f'/bin/cat > "{out}"\n')
    Desktop({"PATH": str(tmp_path / "bin")}, platform="linux").copy("http://127.0.0.1:8989/v1")
    assert out.read_text() == "http://127.0.0.1:8989/v1"


def test_desktop_copy_without_any_tool_raises_a_readable_error(tmp_path: Path) -> None:
    from ki2api_tray.desktop.shell import Desktop

    with pytest.raises(DesktopError, match="no clipboard tool found"):
        Desktop({"PATH": str(tmp_path)}, platform="linux").copy("x")


def test_desktop_copy_falls_back_when_a_tool_fails(tmp_path: Path) -> None:
    from ki2api_tray.desktop.shell import Desktop

    out = tmp_path / "clipboard.txt"
    _fake_tool(tmp_path / "bin", "wl-copy", "exit 1\n")
    _fake_tool(tmp_path / "bin", "xsel", f'/bin/cat > "{out}"\n')
    Desktop({"PATH": str(tmp_path / "bin"), "WAYLAND_DISPLAY": "wayland-0"}, platform="linux").copy("key")
    assert out.read_text() == "key"


def test_desktop_open_runs_xdg_open_with_a_clean_library_path(tmp_path: Path) -> None:
    from ki2api_tray.desktop.shell import Desktop

    out = tmp_path / "opened.txt"
    _fake_tool(
        tmp_path / "bin",
        "xdg-open",
        f'echo "$1 ${{LD_LIBRARY_PATH:-unset}}" > "{out}.tmp"; /bin/mv "{out}.tmp" "{out}"\n',
    )
    environ = {"PATH": str(tmp_path / "bin"), "LD_LIBRARY_PATH": "/bundle", "LD_LIBRARY_PATH_ORIG": "/usr/lib/x"}
    Desktop(environ, platform="linux").open(tmp_path)
    wait_for(out.exists)
    assert out.read_text().split() == [str(tmp_path), "/usr/lib/x"]


@pytest.mark.parametrize(
    ("environ", "frozen", "expected"),
    [
        ({"LD_LIBRARY_PATH": "/b", "LD_LIBRARY_PATH_ORIG": "/o"}, True, "/o"),
        ({"LD_LIBRARY_PATH": "/b"}, True, None),
        ({"LD_LIBRARY_PATH": "/mine"}, False, "/mine"),
    ],
)
def test_desktop_child_environment(environ: dict[str, str], frozen: bool, expected: str | None) -> None:
    from ki2api_tray.desktop.shell import child_environment

    env = child_environment(environ, frozen)
    assert env.get("LD_LIBRARY_PATH") == expected
    assert "LD_LIBRARY_PATH_ORIG" not in env


class XorgLikeIcon(RecordingIcon):
    """Like pystray's X11 backend: the title becomes a Latin-1 window name (it raised on "—" before)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["title"].encode("latin-1")  # what Xlib does when the window is created
        super().__init__(*args, **kwargs)

    def _update_title(self) -> None:
        self.title.encode("latin-1")
        super()._update_title()


XorgLikeIcon.__module__ = "pystray._xorg"


@pytest.mark.parametrize("language", ["en", "zh"])
def test_tray_titles_survive_the_x11_backend(language: str) -> None:
    # The frozen Linux app uses the X11 backend; a title with "—" or Chinese crashed it at start.
    state = AppState(running(phase=Phase.ERROR, last_error="Port 8989 is already in use — another ki2api"))
    tray = TrayUI(
        FakeService(state), state, Settings(), icon_cls=XorgLikeIcon, desktop=FakeDesktop(),
        autostart=FakeAutostart(), language=language,
    )  # fmt: skip

    tray._apply(running())

    assert tray.icon.title.startswith("ki2api")


class _MenuLessIcon:
    HAS_MENU = False


def test_a_menu_less_backend_from_source_on_linux_needs_pygobject(monkeypatch: pytest.MonkeyPatch) -> None:
    from ki2api_tray.desktop.tray import lacks_menu

    monkeypatch.setitem(sys.modules, "gi", None)  # `import gi` now fails as it does without PyGObject
    assert lacks_menu(_MenuLessIcon, platform="linux")
    assert not lacks_menu(_MenuLessIcon, platform="win32")
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # the packaged app cannot take PyGObject
    assert not lacks_menu(_MenuLessIcon, platform="linux")


def test_status_page_says_the_tray_menu_needs_pygobject() -> None:
    from ki2api_tray.api.status_page import render_status_page
    from ki2api_tray.state import Status

    url = "http://127.0.0.1:8989/v1"
    assert "PyGObject" not in render_status_page(Status(), base_url=url, language="en")
    page = render_status_page(Status(tray_menu_missing=True), base_url=url, language="en")
    assert "needs PyGObject" in page and "python3 -m venv --system-site-packages" in page
    assert "PyGObject" in render_status_page(Status(tray_menu_missing=True), base_url=url, language="zh")

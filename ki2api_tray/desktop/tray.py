"""TrayUI: the pystray icon and menu. It reads `AppState` snapshots and asks the service to act.

pystray runs on the main thread (macOS requires it); `setup` starts the service and returns. Every change
to the icon, title, menu or a notification goes through `TrayUI.ui_call`, which runs it on the thread the
backend owns (see `ui_thread`): pystray does not marshal on Windows or macOS.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import __version__
from ..config import ConfigError, Settings, set_config_value, write_default_config
from ..i18n import Translator, choose_language
from ..service import ClientFiles, Plan, SetupError, snippets
from ..state import KIRO_SUPPORT_URL, AppState, Phase, Status, TokenHealth, TokenStatus
from ..wording import (
    Level,
    account_line,
    level_of,
    login_line,
    quota_line,
    requests_line,
    shorten,
    status_line,
    token_line,
    tooltip,
)
from . import autostart as autostart_module
from .icons import menu_bar_icon, status_icon
from .menu_bar import retina_icon_class
from .notices import notices
from .shell import KIRO_DOWNLOAD_URL, Desktop, DesktopActions, DesktopError, kiro_program
from .translocation import placement_problem
from .ui_thread import PostMessage, UiThread

if TYPE_CHECKING:
    import pystray
    from PIL import Image

log = logging.getLogger(__name__)

NOTIFY_TITLE_LIMIT = 60  # Windows szInfoTitle[64]
NOTIFY_TEXT_LIMIT = 250  # Windows szInfo[256]


def can_show_tray(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> tuple[bool, str]:
    """Whether a tray icon can appear here; if not, a one-line reason (the app then runs headless)."""
    if environ.get("PYSTRAY_BACKEND") == "dummy":
        return False, "PYSTRAY_BACKEND=dummy has no visible tray"
    if platform not in ("win32", "darwin") and not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        return False, "no graphical session (DISPLAY and WAYLAND_DISPLAY are not set)"
    try:
        import pystray  # noqa: F401  # with no usable display this raises Xlib errors, not ImportError
    except Exception as exc:  # noqa: BLE001 - any failure means "no tray"
        return False, f"the tray library could not load ({type(exc).__name__}: {exc})"
    return True, ""


def lacks_menu(icon_cls: type[object], platform: str = sys.platform) -> bool:
    """From source on Linux without PyGObject, pystray falls back to its X11 backend, which has no menu."""
    if not platform.startswith("linux") or getattr(sys, "frozen", False) or getattr(icon_cls, "HAS_MENU", True):
        return False
    try:
        import gi  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return True
    return False  # PyGObject is there; the X11 backend was asked for by name (PYSTRAY_BACKEND)


class ServiceControl(Protocol):
    """What the tray needs from `ProxyService`."""

    def start(self) -> bool: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def close(self) -> None: ...


class TrayUI:
    """The tray icon, its menu and its notifications; owns no state of its own beyond what it last showed."""

    def __init__(
        self,
        service: ServiceControl,
        state: AppState,
        settings: Settings,
        *,
        icon_cls: type[pystray.Icon] | None = None,
        desktop: DesktopActions | None = None,
        autostart: autostart_module.Autostart | None = None,
        language: str | None = None,
        refresh_interval: float = 1.0,
        tick_interval: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        ui_post: PostMessage | None = None,
        placement: Callable[[], str] | None = None,
        find_kiro: Callable[[], Path | None] = kiro_program,
    ) -> None:
        import pystray

        self.service = service
        self.state = state
        self.settings = settings
        # Win32's SetClipboardData needs the clipboard opened by a window: the icon's own.
        self.desktop: DesktopActions = desktop or Desktop(owner_window=lambda: getattr(self.icon, "_hwnd", None))
        self.autostart = autostart or autostart_module.for_this_os()
        self.tr = Translator(language or choose_language(settings.language))
        self.refresh_interval = refresh_interval  # menus are rebuilt at most this often
        self.tick_interval = tick_interval  # "expires in N min" changes with time alone
        self._clock = clock
        self._placement = placement or placement_problem  # where the app runs from, if that is a problem
        self._find_kiro = find_kiro
        self.notifications_on = settings.notifications
        self._told: set[tuple[str, str]] = set()  # events already notified, so each is told once
        self._closed = threading.Event()
        self._quitting = False
        self._refresh_lock = threading.Lock()
        self._refresh_pending = False
        self._last_refresh = 0.0
        self._timer: threading.Timer | None = None
        self.client_files = ClientFiles(settings.app_paths.state_dir)
        self._previews: dict[str, Plan] = {}  # shown diffs, the only plans "apply" may write
        self._unsubscribe: Callable[[], None] | None = None
        status = state.snapshot()
        self._seen = status  # the last snapshot notifications were decided on
        self._level = level_of(status)  # the level the icon image shows
        cls = icon_cls or pystray.Icon
        self._menu_bar = cls.__module__.endswith("._darwin")
        if self._menu_bar:
            cls = retina_icon_class(cls)
        # pystray's X11 backend writes the title as a Latin-1 window name and crashes on "—" or Chinese;
        # it shows no tooltip anyway, so there the title only has to be harmless.
        self._latin1_title = cls.__module__.endswith("._xorg")
        self.icon = cls("ki2api-tray", icon=self._image(self._level), title=self._title(status), menu=self.build_menu())
        self.ui = UiThread(self.icon, post_message=ui_post)
        self.menu_missing = lacks_menu(cls)

    def ui_call(self, fn: Callable[..., object], *args: object) -> None:
        """Run one change to the icon, title, menu or a notification on the thread the backend owns."""
        self.ui.call(fn, *args)

    def _image(self, level: Level) -> Image.Image:
        return menu_bar_icon(level) if self._menu_bar else status_icon(level)

    def _title(self, status: Status) -> str:
        text = tooltip(status, self.tr, self._clock())
        return text.encode("latin-1", "replace").decode("latin-1") if self._latin1_title else text

    # --- menu ------------------------------------------------------------------------------------------

    def build_menu(self) -> pystray.Menu:
        import pystray

        item, snap, tr = pystray.MenuItem, self.state.snapshot, self.tr

        def running(_: object = None) -> bool:
            return snap().phase is Phase.RUNNING

        return pystray.Menu(
            item(lambda _: status_line(snap(), tr), None, enabled=False),
            item(lambda _: token_line(snap().token, tr, self._clock()), None, enabled=False),
            item(
                lambda _: login_line(snap().token, tr), None, enabled=False, visible=lambda _: bool(snap().token.login)
            ),
            # Only while Kiro has suspended the account: the one thing that can help (kiro-protocol-2026.md §7).
            item(
                tr("menu.open_support"),
                self.open_support,
                visible=lambda _: _suspended(snap()) is not None,
            ),
            # Several Kiro accounts (issue #14): one line each, the one in use marked, a suspended one saying so.
            *(
                item(
                    functools.partial(self._account_text, index),
                    None,
                    enabled=False,
                    visible=functools.partial(self._shows_account, index),
                )
                for index in range(MAX_ACCOUNT_LINES)
            ),
            item(lambda _: requests_line(snap(), tr), None, enabled=False),
            item(lambda _: quota_line(snap().quota, tr), None, enabled=False),
            pystray.Menu.SEPARATOR,
            item(lambda _: tr("menu.stop" if self._serving() else "menu.start"), self.toggle_server),
            item(lambda _: tr("menu.copy_url", url=self.base_url()), self.copy_base_url),
            item(tr("menu.copy_key"), self.copy_api_key),
            # The default item is what a left click does on Windows: something harmless, never Stop.
            # pystray runs the default item on a left click even when it is disabled: guard the action too.
            item(tr("menu.setup"), self._setup_menu()),
            item(tr("menu.open_status"), _only_when(running, self.open_status_page), enabled=running, default=True),
            item(tr("menu.open_kiro"), self.open_kiro, visible=lambda _: self._login_missing()),
            pystray.Menu.SEPARATOR,
            item(tr("menu.open_logs"), self.open_logs),
            item(tr("menu.open_config"), self.open_config),
            item(tr("menu.autostart"), self.toggle_autostart, checked=lambda _: self._autostart_enabled()),
            item(tr("menu.notifications"), self.toggle_notifications, checked=lambda _: self.notifications_on),
            pystray.Menu.SEPARATOR,
            # Only when the update check found a newer release: opens its page; ki2api never updates itself.
            item(
                lambda _: tr("menu.update", version=release.version) if (release := snap().update) else "",
                self.open_update,
                visible=lambda _: snap().update is not None,
            ),
            item(tr("menu.about", version=__version__), self.about),
            item(tr("menu.quit"), self.quit),
        )

    def _setup_menu(self) -> pystray.Menu:
        """Set up a client: show the changes first, apply them with a click, undo; snippets for the rest."""
        import pystray

        item, tr = pystray.MenuItem, self.tr
        entries: list[pystray.MenuItem] = []
        for client, label in SETUP_CLIENTS.items():
            entries += [
                item(tr("menu.setup_preview", client=label), _call(self.preview_client, client)),
                item(
                    tr("menu.setup_apply", client=label),
                    _call(self.apply_client, client),
                    enabled=_when(lambda c: c in self._previews, client),
                ),
                item(
                    tr("menu.setup_undo", client=label),
                    _call(self.undo_client, client),
                    enabled=_when(self.client_files.can_undo, client),
                ),
                pystray.Menu.SEPARATOR,
            ]
        names = snippets("", "")
        copies = [item(name, _call(self.copy_snippet, name)) for name in names]
        return pystray.Menu(*entries, item(tr("menu.setup_copy"), pystray.Menu(*copies)))

    def base_url(self) -> str:
        """The URL clients use: the live address while running (the port may differ from the setting)."""
        address = self.state.snapshot().address
        return f"http://{address}/v1" if address else self.settings.base_url

    def _login_missing(self) -> bool:
        token = self.state.snapshot().token
        # Signing in helps only when the login itself is the problem (not a locked or exhausted account).
        if token.health is TokenHealth.EXPIRED:
            return not token.renewable
        return token.health in (TokenHealth.MISSING, TokenHealth.UNREADABLE, TokenHealth.REFRESH_FAILED)

    def _serving(self) -> bool:
        return self.state.snapshot().phase in (Phase.STARTING, Phase.RUNNING)

    def _autostart_enabled(self) -> bool:
        try:
            return self.autostart.is_enabled()
        except Exception:  # a locked registry or unreadable file: show "off" rather than break the menu
            log.warning("cannot read the start-at-login state", exc_info=True)
            return False

    # --- actions (called by pystray on its thread) -----------------------------------------------------

    def toggle_server(self) -> None:
        # Starting or stopping can take seconds (open streams); keep the menu responsive meanwhile.
        work = self.service.stop if self._serving() else self.service.start
        threading.Thread(target=work, name="ki2api-toggle", daemon=True).start()

    def copy_base_url(self) -> None:
        self._copy(self.base_url())

    def copy_api_key(self) -> None:
        self._copy(self.settings.api_key)

    def open_status_page(self) -> None:
        self._open(self.base_url().removesuffix("/v1") + "/")

    def preview_client(self, client: str) -> None:
        """Work out the change for `client` and open its diff; nothing is written until "apply"."""
        label = SETUP_CLIENTS[client]
        try:
            plan = self.client_files.plan(client, self.base_url(), self.settings.api_key)
            diff_file = self.settings.app_paths.state_dir / f"client-setup-{client}.diff"
            diff_file.parent.mkdir(parents=True, exist_ok=True)
            diff_file.write_text(plan.diff, encoding="utf-8")
        except (SetupError, OSError) as exc:
            self.notify(self.tr("notify.setup_failed", client=label, reason=exc))
            return
        self._previews[client] = plan
        self._open(str(diff_file))
        self.refresh_menu()

    def apply_client(self, client: str) -> None:
        label = SETUP_CLIENTS[client]
        plan = self._previews.pop(client, None)
        if plan is None:
            return
        try:
            backup = self.client_files.apply(plan)
        except (SetupError, OSError) as exc:
            self.notify(self.tr("notify.setup_failed", client=label, reason=exc))
        else:
            if backup is None:
                self.notify(self.tr("notify.setup_created", client=label, path=plan.path))
            else:
                self.notify(self.tr("notify.setup_applied", client=label, path=plan.path, backup=backup.name))
        self.refresh_menu()

    def undo_client(self, client: str) -> None:
        label = SETUP_CLIENTS[client]
        try:
            path = self.client_files.undo(client)
        except (SetupError, OSError) as exc:
            self.notify(self.tr("notify.setup_failed", client=label, reason=exc))
        else:
            self.notify(self.tr("notify.setup_undone", client=label, path=path))
        self.refresh_menu()

    def copy_snippet(self, name: str) -> None:
        self._copy(snippets(self.base_url(), self.settings.api_key)[name])

    def refresh_menu(self) -> None:
        """Re-evaluate enabled states after a set-up action (pystray reads them when the menu is drawn)."""
        self.ui_call(self.icon.update_menu)

    def open_update(self) -> None:
        release = self.state.snapshot().update
        if release is not None:
            self._open(release.url)

    def open_logs(self) -> None:
        log_dir = self.settings.app_paths.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._open(str(log_dir))

    def open_config(self) -> None:
        config_file = self.settings.app_paths.config_file
        try:
            write_default_config(config_file)
        except OSError as exc:
            self.notify(self.tr("notify.open_failed", target=str(config_file), reason=exc.strerror or exc))
            return
        self._open(str(config_file))

    def open_kiro(self) -> None:
        """Kiro signs in, ki2api's watcher notices the new login by itself; without Kiro, its download page."""
        program = self._find_kiro()
        if program is None:
            self.notify(self.tr("notify.kiro_not_found"))
            self._open(KIRO_DOWNLOAD_URL)
            return
        try:
            self.desktop.start(program)
        except DesktopError as exc:
            self.notify(self.tr("notify.open_failed", target=str(program), reason=exc))

    def about(self) -> None:
        folder = str(self.settings.app_paths.config_dir)
        self.notify(self.tr("notify.about", version=__version__, python=platform.python_version(), folder=folder))

    def toggle_notifications(self) -> None:
        """Switch state notifications on or off, and keep the choice in config.json for the next start."""
        self.notifications_on = not self.notifications_on
        try:
            set_config_value(self.settings.app_paths.config_file, "notifications", self.notifications_on)
        except (OSError, ConfigError) as exc:
            log.warning("could not save the notification switch: %s", exc)
        self._schedule_refresh()

    def toggle_autostart(self) -> None:
        try:
            if self.autostart.is_enabled():
                self.autostart.disable()
            else:
                self.autostart.enable()
        except Exception as exc:
            log.warning("changing start-at-login failed", exc_info=True)
            self.notify(self.tr("notify.autostart_failed", reason=exc))

    def quit(self) -> None:
        """Hide the icon at once, stop the server, then end the pystray loop."""
        if self._quitting:
            return
        self._quitting = True
        self._stop_refreshing()
        self.ui_call(self._hide)
        try:
            self.service.close()
        finally:
            self.ui_call(self.icon.stop)

    def open_support(self, *_: object) -> None:
        suspended = _suspended(self.state.snapshot())
        self._open((suspended.support_url if suspended is not None else "") or KIRO_SUPPORT_URL)

    def _account_text(self, index: int, _: object = None) -> str:
        accounts = self.state.snapshot().accounts
        return account_line(accounts[index], self.tr, self._clock()) if index < len(accounts) else ""

    def _shows_account(self, index: int, _: object = None) -> bool:
        accounts = self.state.snapshot().accounts
        return len(accounts) > 1 and index < len(accounts)

    def _copy(self, text: str) -> None:
        try:
            self.desktop.copy(text)
        except DesktopError as exc:
            self.notify(self.tr("notify.copy_failed", reason=exc))

    def _open(self, target: str) -> None:
        try:
            self.desktop.open(target)
        except DesktopError as exc:
            self.notify(self.tr("notify.open_failed", target=target, reason=exc))

    # --- lifecycle ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Show the icon and block until Quit. Must be called on the main thread."""
        _hide_dock_icon()
        self.ui.owner = threading.current_thread()  # pystray's loop runs here
        try:
            self.icon.run(self._setup)
        except Exception as exc:
            # pystray's GTK backend closes notifications on exit; without a notification daemon that
            # raises GLib.GError (ServiceUnknown) although everything else went fine.
            if not _is_gerror(exc):
                raise
            log.warning("tray loop ended with %s", exc)
        finally:
            self._stop_refreshing()
            if not self._quitting:
                self.service.close()

    def _setup(self, icon: pystray.Icon) -> None:
        self.ui_call(setattr, icon, "visible", True)
        self._seen = self.state.snapshot()
        self._unsubscribe = self.state.subscribe(self._on_state)
        threading.Thread(target=self._tick, name="ki2api-tray-tick", daemon=True).start()
        self.service.start()
        status = self.state.snapshot()
        if status.token.health is TokenHealth.MISSING and self.settings.access_token is None:
            self.notify(
                self.tr("notify.no_token", path=str(self.settings.token_file)), self.tr("notify.no_token_title")
            )
        if self._placement():  # macOS App Translocation or the mounted disk image
            self.notify(self.tr("notify.move_to_applications"))
        self._schedule_refresh()

    def show_already_running(self) -> None:
        """A second launch rang the doorbell (see `instance.SingleInstance`)."""
        self.notify(self.tr("notify.already_running"))

    def notify(self, message: str, title: str | None = None) -> None:
        title = shorten(title or self.tr("notify.title"), NOTIFY_TITLE_LIMIT)
        message = shorten(message, NOTIFY_TEXT_LIMIT)
        self.ui_call(self._show_notification, message, title)

    def _show_notification(self, message: str, title: str) -> None:
        if not getattr(self.icon, "HAS_NOTIFICATION", False):
            return
        try:
            # Always with a title: pystray's macOS backend crashes on title=None (pystray PR #192).
            self.icon.notify(message, title)
        except Exception:
            log.warning("notification failed: %s", message, exc_info=True)

    def _hide(self) -> None:
        try:
            self.icon.visible = False
        except Exception:
            log.debug("hiding the icon failed", exc_info=True)

    # --- reacting to state --------------------------------------------------------------------------------

    def _on_state(self, status: Status) -> None:
        """Runs on the writer's thread: decide on notifications, schedule a (debounced) redraw."""
        before, self._seen = self._seen, status
        self._notify_transition(before, status)
        self._schedule_refresh()

    def _notify_transition(self, before: Status, after: Status) -> None:
        """Tell the person about changes they have to act on, each event once, unless switched off."""
        if not self.notifications_on:
            return
        for message in notices(before, after, self.tr, self._clock(), self._told):
            self.notify(message)

    def _tick(self) -> None:
        while not self._closed.wait(self.tick_interval):
            self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        with self._refresh_lock:
            if self._refresh_pending or self._closed.is_set():
                return
            self._refresh_pending = True
            delay = max(0.0, self._last_refresh + self.refresh_interval - time.monotonic())
            self._timer = threading.Timer(delay, self._refresh)
            self._timer.daemon = True
            self._timer.start()

    def _refresh(self) -> None:
        with self._refresh_lock:
            self._refresh_pending = False
            self._last_refresh = time.monotonic()
        self.ui_call(self._apply, self.state.snapshot())

    def _apply(self, status: Status) -> None:
        try:
            level = level_of(status)
            if level is not self._level:
                self._level = level
                self.icon.icon = self._image(level)
            self.icon.title = self._title(status)
            self.icon.update_menu()
        except Exception:
            log.warning("updating the tray failed", exc_info=True)

    def _stop_refreshing(self) -> None:
        self._closed.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._refresh_lock:
            if self._timer is not None:
                self._timer.cancel()


def _only_when(condition: Callable[[], bool], action: Callable[[], None]) -> Callable[[], None]:
    def guarded() -> None:
        if condition():
            action()

    return guarded


SETUP_CLIENTS = {"claude-code": "Claude Code", "codex": "Codex"}


def _call(action: Callable[[str], None], value: str) -> Callable[[], None]:
    # pystray passes (icon, item) to actions that take arguments, so each entry gets a no-argument closure.
    return lambda: action(value)


def _when(test: Callable[[str], bool], value: str) -> Callable[[object], bool]:
    return lambda _item: test(value)


def _is_gerror(exc: BaseException) -> bool:
    # PyGObject names the class "GError" in old releases and "Error" (module gi.repository.GLib) in new ones.
    kind = type(exc)
    return kind.__name__ == "GError" or kind.__module__.startswith(("gi.", "gi._"))


def name_gtk_program() -> None:
    """Name the program before GTK starts (pystray's import starts it): the name becomes the WM_CLASS of
    ki2api's windows and the sender of its notifications, instead of "__main__.py" or "python3"."""
    if not sys.platform.startswith("linux") or "gi" in sys.modules:
        return
    try:
        from gi.repository import GLib  # type: ignore[import-not-found]

        GLib.set_prgname("ki2api-tray")
    except Exception:  # noqa: BLE001 - no PyGObject means no GTK backend either; cosmetic only
        log.debug("could not name the GTK program", exc_info=True)


def _hide_dock_icon() -> None:
    """From source on macOS, Python would show a Dock icon; the packaged app sets LSUIElement instead."""
    if sys.platform != "darwin" or getattr(sys, "frozen", False):
        return
    try:
        from AppKit import NSApplication, NSApplicationActivationPolicyAccessory  # type: ignore[import-not-found]

        NSApplication.sharedApplication().setActivationPolicy_(NSApplicationActivationPolicyAccessory)
    except Exception:  # noqa: BLE001 - cosmetic only
        log.debug("could not hide the Dock icon", exc_info=True)


MAX_ACCOUNT_LINES = 8  # menu lines for a pool of accounts; more accounts are on the status page


def _suspended(status: Status) -> TokenStatus | None:
    """The suspended login the support item is for: the one in use, else the first suspended account."""
    if status.token.health is TokenHealth.SUSPENDED:
        return status.token
    return next((a.token for a in status.accounts if a.token.health is TokenHealth.SUSPENDED), None)

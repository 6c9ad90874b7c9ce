"""`ki2api-tray --selftest`: prove that an installation (above all a frozen build) is complete, then exit.

Checks that every module loads (including the ones libraries import by name, which PyInstaller cannot
see), that the bundled icons are there, and that the server starts on a free port and answers `/health`.
Runs in a throw-away folder with no Kiro login, so it never reads or writes the user's token file.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from . import __version__, paths
from .config import Settings

log = logging.getLogger(__name__)

# Loaded by name at run time, so a freezer's import scan misses them unless the spec lists them:
# uvicorn turns its `loop="asyncio"`, `http="h11"`, `lifespan="on"` strings into imports, and anyio
# (under starlette) imports its event-loop backend by name.
NAMED_AT_RUNTIME = (
    "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "h11",
    "anyio._backends._asyncio",
)
# pystray, watchdog and platformdirs each choose a per-OS module inside a function.
PER_OS = {
    "win32": ("watchdog.observers.read_directory_changes", "platformdirs.windows"),
    "darwin": ("watchdog.observers.fsevents", "platformdirs.macos"),
    "linux": ("watchdog.observers.inotify", "platformdirs.unix"),
}
TRAY_BACKENDS = {"win32": "pystray._win32", "darwin": "pystray._darwin"}
TRAY_BACKEND_DEFAULT = "pystray._xorg"  # the only Linux backend a frozen build has (no system PyGObject)
APP_ICON = "icon.png"
# Where the self-test's server sends anything meant for Kiro: the discard port on loopback, so a check that
# wanders off to the network fails fast instead of reaching AWS.
NOWHERE = "http://127.0.0.1:9"
HEALTH_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<4} {self.name}: {self.detail}"


def run_selftest(settings: Settings) -> int:
    """Run every check, print one line each (stdout may be missing) and log them; 0 when all passed."""
    started = time.monotonic()
    package = Path(__file__).resolve().parent
    where = f"frozen build in {Path(sys.executable).parent}" if getattr(sys, "frozen", False) else f"from {package}"
    _report(Check("version", True, f"ki2api-tray {__version__}, Python {sys.version.split()[0]}, {where}"))
    checks: tuple[tuple[str, Callable[[], Check]], ...] = (
        ("app modules", check_app_modules),
        ("runtime modules", check_runtime_modules),
        ("tray backend", check_tray_backend),
        ("desktop", lambda: check_desktop(settings)),
        ("assets", check_assets),
        ("server", lambda: check_server(settings)),
    )
    results = [_report(_run_check(name, check)) for name, check in checks]
    failed = [r.name for r in results if not r.ok]
    elapsed = time.monotonic() - started
    if failed:
        _emit(f"selftest: FAILED ({', '.join(failed)}) in {elapsed:.2f} s", logging.ERROR)
        return 1
    _emit(f"selftest: passed ({len(results)} checks) in {elapsed:.2f} s", logging.INFO)
    return 0


def check_app_modules() -> Check:
    """Every module of the package imports: a frozen build that lost one fails here, not in a user's menu."""
    package = importlib.import_module("ki2api_tray")
    names = sorted(
        info.name
        for info in pkgutil.walk_packages(package.__path__, "ki2api_tray.")
        if not info.name.endswith("__main__")  # the entry script itself; importing it would be a no-op anyway
    )
    # A walk that finds nothing (a freezer without pkgutil support) must not pass as "all imported".
    expected = {"ki2api_tray.app", "ki2api_tray.api.server", "ki2api_tray.service", "ki2api_tray.desktop.tray"}
    unseen = sorted(expected - set(names))
    if unseen:
        return Check("app modules", False, f"not found in the build: {', '.join(unseen)}")
    failures = _import_all(names)
    if failures:
        return Check("app modules", False, "; ".join(failures))
    return Check("app modules", True, f"{len(names)} modules of ki2api_tray imported")


def check_runtime_modules() -> Check:
    names = [*NAMED_AT_RUNTIME, *PER_OS.get(sys.platform, PER_OS["linux"])]
    failures = _import_all(names)
    if failures:
        return Check("runtime modules", False, "; ".join(failures))
    from watchdog.observers import Observer

    # watchdog quietly falls back to polling when the native observer cannot load; show which one we got.
    watcher = getattr(Observer, "__name__", repr(Observer))
    return Check("runtime modules", True, f"{', '.join(names)}; file watcher {watcher}")


def check_tray_backend() -> Check:
    """The OS's pystray backend is loaded when a tray can show here; otherwise it must at least be bundled."""
    from .desktop.tray import can_show_tray

    backend = TRAY_BACKENDS.get(sys.platform, TRAY_BACKEND_DEFAULT)
    possible, reason = can_show_tray()
    if possible:
        try:
            loaded = importlib.import_module(backend)
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            return Check("tray backend", False, f"{backend} did not load: {type(exc).__name__}: {exc}")
        return Check("tray backend", True, f"{loaded.__name__} loaded")
    try:
        with _pystray_without_display():
            spec = importlib.util.find_spec(backend)
    except Exception as exc:  # noqa: BLE001
        return Check("tray backend", False, f"pystray did not load: {type(exc).__name__}: {exc}")
    if spec is None:
        return Check("tray backend", False, f"{backend} is not in the build")
    return Check("tray backend", True, f"{backend} bundled; not loaded because {reason}")


def check_desktop(settings: Settings) -> Check:
    """The double-click path's own pieces: the single-instance lock and its doorbell, `PyObjCTools.AppHelper` on
    macOS (every tray change goes through it), and the tray built with this OS's backend where a session exists."""
    from .desktop.instance import SingleInstance
    from .desktop.tray import can_show_tray

    done = []
    with tempfile.TemporaryDirectory(prefix="ki2api-selftest-", ignore_cleanup_errors=True) as tmp:
        folder = Path(tmp)
        first, second = SingleInstance(folder / "state" / "ki2api-tray.lock"), SingleInstance(
            folder / "state" / "ki2api-tray.lock"
        )
        rang = threading.Event()
        first.set_on_show(rang.set)
        if not first.acquire():
            return Check("desktop", False, "could not take the single-instance lock in a fresh folder")
        try:
            if second.acquire():
                return Check("desktop", False, "a second instance took the lock the first one holds")
            if not second.ask_running_to_show() or not rang.wait(5.0):
                return Check("desktop", False, "the second instance could not reach the first one's doorbell")
        finally:
            second.release()
            first.release()
        done.append("instance lock and doorbell work")
        if sys.platform == "darwin":
            importlib.import_module("PyObjCTools.AppHelper")
            done.append("PyObjCTools.AppHelper imported")
        possible, reason = can_show_tray()
        if not possible:
            done.append(f"tray not built because {reason}")
            return Check("desktop", True, "; ".join(done))
        done.append(_build_tray(isolated_settings(settings, folder)))
    return Check("desktop", True, "; ".join(done))


class _IdleService:
    """Stands in for the server while the self-test builds a tray: nothing is started."""

    def start(self) -> bool:
        return False

    def stop(self, timeout: float = 5.0) -> None:
        return None

    def close(self) -> None:
        return None


def _build_tray(settings: Settings) -> str:
    """Build the real tray (this OS's pystray backend, its native menu) without showing or running it."""
    from .desktop.tray import TrayUI
    from .state import AppState

    tray = TrayUI(_IdleService(), AppState(), settings)
    tray.icon.update_menu()  # builds the native menu (HMENU / NSMenu) on this, the main, thread
    entries = [item.text for item in tray.icon.menu]
    if len(entries) < 5:
        raise RuntimeError(f"the tray menu has only {len(entries)} entries")
    return f"tray built with {type(tray.icon).__module__} ({len(entries)} menu entries, UI calls by {tray.ui.kind})"


def check_assets() -> Check:
    from PIL import Image

    from .desktop.icons import status_icon
    from .resources import asset, assets_dir, is_frozen
    from .wording import Level

    try:
        path = asset(APP_ICON)
    except FileNotFoundError as exc:
        if is_frozen():
            return Check("assets", False, str(exc))
        # An installed wheel carries no assets/; only the builds need the icon files.
        return Check("assets", True, f"no {assets_dir()} (installed package, not a build); icons drawn at run time")
    try:
        with Image.open(path) as image:
            image.load()
            size = image.size
        badges = [status_icon(level) for level in Level]
    except Exception as exc:  # noqa: BLE001 - a broken image library is the finding
        return Check("assets", False, f"{path}: {type(exc).__name__}: {exc}")
    return Check("assets", True, f"{path} ({size[0]}x{size[1]}), {len(badges)} tray icons drawn")


def check_server(settings: Settings) -> Check:
    """Start the real service on a free loopback port, ask `/health`, and stop it again."""
    import httpx

    from .runtime import build_runtime
    from .state import Phase

    with tempfile.TemporaryDirectory(prefix="ki2api-selftest-", ignore_cleanup_errors=True) as tmp:
        runtime = build_runtime(isolated_settings(settings, Path(tmp)))
        try:
            started = time.monotonic()
            if not runtime.service.start():
                return Check("server", False, f"did not start: {runtime.state.snapshot().last_error}")
            address = runtime.state.snapshot().address
            # trust_env=False: a proxy from the environment must not stand between us and loopback.
            with httpx.Client(timeout=HEALTH_TIMEOUT, trust_env=False) as client:
                response = client.get(f"http://{address}/health")
                # The status page inlines its script and style from the package's api/static folder.
                page = client.get(f"http://{address}/")
            elapsed = time.monotonic() - started
            body = response.json() if response.status_code == 200 else {}
            if body.get("status") != Phase.RUNNING.value or body.get("version") != __version__:
                return Check("server", False, f"/health answered {response.status_code}: {response.text[:200]}")
            if page.status_code != 200 or 'id="ki2api-config"' not in page.text:
                return Check("server", False, f"the status page answered {page.status_code} (api/static missing?)")
            return Check("server", True, f"/health answered on {address} {elapsed * 1000:.0f} ms after start")
        finally:
            runtime.service.close()


def isolated_settings(settings: Settings, folder: Path) -> Settings:
    """`settings` moved into `folder`: port 0, no login, no Kiro endpoints, no files of the user's touched."""
    return replace(
        settings,
        host="127.0.0.1",
        port=0,
        token_file=folder / "kiro-auth-token.json",
        profile_file=folder / "profile.json",
        access_token=None,
        refresh_token=None,
        runtime_url=NOWHERE,
        management_url=NOWHERE,
        auth_url=NOWHERE,
        oidc_url=NOWHERE,
        app_paths=paths.AppPaths(config_dir=folder, log_dir=folder / "logs", state_dir=folder / "state"),
    )


def _run_check(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check, not a crashed self-test
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _import_all(names: list[str]) -> list[str]:
    failures = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - collect every missing piece, not just the first
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    return failures


@contextmanager
def _pystray_without_display() -> Iterator[None]:
    """Import pystray where no tray can show: its import picks a backend and, on X11, opens the display.

    The dummy backend makes that import harmless; the variable is only read while pystray is imported.
    """
    previous = os.environ.get("PYSTRAY_BACKEND")
    os.environ["PYSTRAY_BACKEND"] = "dummy"
    try:
        importlib.import_module("pystray")
        yield
    finally:
        if previous is None:
            del os.environ["PYSTRAY_BACKEND"]
        else:
            os.environ["PYSTRAY_BACKEND"] = previous


def _report(check: Check) -> Check:
    _emit(check.line(), logging.INFO if check.ok else logging.ERROR)
    return check


def _emit(line: str, level: int) -> None:
    log.log(level, "%s", line)
    # print() does nothing when sys.stdout is None (a windowed build started without a console).
    print(line, flush=True)

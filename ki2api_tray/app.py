"""Composition root: parse the command line, wire settings, tokens, service and tray, and run.

`ki2api-tray` with no arguments is the double-click path (tray + server); `serve` runs headless;
`status` prints where things are and how the token looks.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from . import __version__, paths
from .config import ConfigError, Settings, is_loopback, load_settings
from .desktop.updates import UpdateCheck
from .limits import raise_open_files_limit
from .logs import configure_logging, guard_std_streams, log_level_problem
from .runtime import Runtime, build_runtime
from .state import Phase

log = logging.getLogger("ki2api_tray")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ki2api-tray",
        description="Use your Kiro login from any OpenAI or Anthropic client. "
        "Without a command, shows the tray icon and starts the server.",
    )
    parser.add_argument("--version", action="version", version=f"ki2api-tray {__version__}")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8989)")
    parser.add_argument("--selftest", action="store_true", help="check the installation and exit (for builds)")
    parser.add_argument("--autostart", action="store_true", help=argparse.SUPPRESS)  # set by start-at-login entries
    commands = parser.add_subparsers(dest="command", metavar="command")
    serve = commands.add_parser("serve", help="run the server in the foreground without a tray icon")
    serve.add_argument("--host", dest="serve_host", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", dest="serve_port", metavar="PORT", type=int, help="port to listen on (default 8989)")
    status = commands.add_parser(
        "status",
        help="show whether a server runs, the Kiro login, the quota and where ki2api keeps its files",
        description="Exit code: 0 a server runs and the Kiro login is usable, 1 no usable Kiro login, "
        "2 no server is running.",
    )
    status.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    args = parser.parse_args(argv)
    args.host = getattr(args, "serve_host", None) or args.host
    args.port = getattr(args, "serve_port", None) or args.port
    return args


def main(argv: Sequence[str] | None = None) -> int:
    guard_std_streams()
    multiprocessing.freeze_support()
    raise_open_files_limit()  # Finder starts apps with a soft limit of 256 descriptors
    args = parse_args(argv)
    # The log file comes first: a windowed build has no stdout or stderr, so anything that goes wrong from
    # here on (a broken config.json, a refused host) must be written where a person and a bug report find it.
    log_file = paths.app_paths().log_file
    configure_logging(log_file, console=False)
    startup = Startup(log_file, desktop=args.command is None and not args.selftest)
    try:
        settings = load_settings({"host": args.host, "port": args.port})
    except ConfigError as error:
        return startup.failed(str(error), code=2)
    problem = log_level_problem(settings.log_level)
    if problem:
        return startup.failed(problem, code=2)
    configure_logging(settings.app_paths.log_file, settings.log_level)
    if args.selftest:
        from .selftest import run_selftest

        return run_selftest(settings)
    if args.command == "status":
        from .report import status_report

        report = status_report(settings)
        print(report.as_json() if args.json else report.as_text())
        return report.exit_code
    refusal = exposure_refusal(settings)
    if refusal:
        return startup.failed(refusal, code=2)
    if settings.default_key_off_loopback:
        print(
            f"ki2api: listening on {settings.host} with the public default API key because "
            "KI2API_ALLOW_DEFAULT_KEY_OFF_LOOPBACK is set: publish the port on 127.0.0.1 only",
            file=sys.stderr,
        )
    if args.command == "serve":
        return serve(build_runtime(settings))
    try:
        return run_desktop(settings, startup)
    except Exception as exc:
        log.exception("the desktop app failed")
        return startup.failed(f"ki2api stopped because of an unexpected error: {type(exc).__name__}: {exc}", code=1)


class Startup:
    """Reports why the app cannot start: always to the log and stderr, and on the desktop path also to the
    person, since a double-clicked app that silently vanishes looks like it never ran."""

    def __init__(self, log_file: Path, desktop: bool) -> None:
        self.log_file = log_file
        self.desktop = desktop

    def failed(self, reason: str, code: int) -> int:
        log.error("cannot start: %s", reason)
        print(f"ki2api: {reason}", file=sys.stderr)
        self.tell(reason)
        return code

    def tell(self, reason: str, title: str = "ki2api could not start") -> None:
        if not self.desktop:
            return
        from .desktop.alert import tell_person

        shown = tell_person(title, f"{reason}\n\nThe log file has the details: {self.log_file}")
        log.info("told the person through %s", shown or "nothing (no way to show it here)")


def run_desktop(settings: Settings, startup: Startup) -> int:
    """The double-click path: one instance per user, a tray icon, the server started."""
    from .desktop.instance import SingleInstance
    from .desktop.tray import can_show_tray, name_gtk_program

    name_gtk_program()
    possible, reason = can_show_tray()
    if not possible:
        headless = f"{reason}; running without a tray icon (like `ki2api-tray serve`)."
        log.warning("%s", headless)
        print(f"ki2api: {headless}", file=sys.stderr)
        if sys.platform in ("win32", "darwin"):  # there a missing tray is a broken install, not a server box
            startup.tell(f"{headless} The status page is at {settings.base_url.removesuffix('/v1')}/", "ki2api")
        return serve(build_runtime(settings))
    instance = SingleInstance(settings.app_paths.lock_file)
    if not instance.acquire():
        told = instance.ask_running_to_show()
        print("ki2api is already running" + ("; its tray icon says hello." if told else "."), file=sys.stderr)
        if not told:  # the running one did not answer: without this the double-click looks ignored
            startup.tell(
                f"ki2api is already running but does not answer. Quit it from its icon, or end it in the "
                f"task manager, then start ki2api again. (Lock file: {settings.app_paths.lock_file})",
                "ki2api",
            )
        return 0
    try:
        from .desktop.tray import TrayUI

        runtime = build_runtime(settings)
        tray = TrayUI(runtime.service, runtime.state, settings)
        if tray.menu_missing:
            print(f"ki2api: {tray.tr('notice.no_menu')}", file=sys.stderr)
            runtime.state.update(tray_menu_missing=True)  # the status page says it too
        instance.set_on_show(tray.show_already_running)
        UpdateCheck(settings, runtime.state).start()  # in the background; a newer release adds a tray item
        tray.run()  # blocks on the main thread until Quit; starts the service in its setup callback
        runtime.service.close()
        return 0
    finally:
        instance.release()


MIN_KEY_LENGTH = 16


def exposure_refusal(settings: Settings) -> str:
    """Why we refuse to listen beyond this machine, or "" when the setup is safe."""
    if is_loopback(settings.host):
        return ""
    if settings.uses_default_key:
        if settings.allow_default_key_off_loopback:
            return ""  # a port published on loopback only (docker-compose.yml); the Host guard stays on
        return (
            f"refusing to listen on {settings.host} with the public default API key: anyone who can reach this "
            "machine could use your Kiro account. Set API_KEY to a secret of your own, or listen on 127.0.0.1."
        )
    length = len(settings.api_key)  # only the length is compared: not a secret
    if length < MIN_KEY_LENGTH:
        return (
            f"refusing to listen on {settings.host} with an API key of {length} characters: a short "
            f"key can be guessed by anyone who can reach this machine. Use at least {MIN_KEY_LENGTH} random "
            'characters (e.g. from `python -c "import secrets; print(secrets.token_urlsafe(24))"`), or '
            "listen on 127.0.0.1."
        )
    return ""


def serve(runtime: Runtime) -> int:
    """Run headless until Ctrl-C or SIGTERM; the exit code says whether the server could start."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_signal)
    service = runtime.service
    if not service.start():
        log.error("cannot start: %s", runtime.state.snapshot().last_error)
        print(f"ki2api: {runtime.state.snapshot().last_error}", file=sys.stderr)
        service.close()
        return 1
    UpdateCheck(runtime.settings, runtime.state).start()  # in the background; never by the self-test
    token = runtime.state.snapshot().token
    address = runtime.state.snapshot().address  # the bound one: port 0 in the settings picks a free port
    print(f"ki2api {__version__}: OpenAI and Anthropic APIs on http://{address}/v1", file=sys.stderr)
    print(f"ki2api: Kiro token {token.health.value}{': ' + token.detail if token.detail else ''}", file=sys.stderr)
    print("ki2api: press Ctrl-C to stop", file=sys.stderr)
    try:
        while not stop.wait(0.5):
            if runtime.state.snapshot().phase is Phase.ERROR:
                log.error("server stopped: %s", runtime.state.snapshot().last_error)
                print(f"ki2api: server stopped: {runtime.state.snapshot().last_error}", file=sys.stderr)
                return 1
    finally:
        service.close()
    log.info("stopped")
    return 0

"""Logging setup for the whole process: a rotating file in the log dir, plus the console when there is one.

Called once by the composition root. Windowed builds start with `sys.stdout is None`; those streams are
replaced before anything logs, because uvicorn's formatter calls `sys.stdout.isatty()`.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path
from types import TracebackType

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def guard_std_streams() -> None:
    """Give a windowed app (no console) harmless stdout/stderr instead of None."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def configure_logging(log_file: Path, level: str = "INFO", console: bool = True) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level.upper() if not log_level_problem(level) else "INFO")
    formatter = logging.Formatter(FORMAT)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=2 * 1024 * 1024, backupCount=3, encoding="utf-8"
        )
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    except OSError as exc:  # a read-only home must not stop the proxy
        print(f"ki2api: cannot write log file {log_file}: {exc}", file=sys.stderr)
    if console and sys.stderr is not None and _is_real_stream(sys.stderr):
        console_handler = logging.StreamHandler(sys.stderr)
        console_handler.setFormatter(formatter)
        root.addHandler(console_handler)
    # uvicorn runs with log_config=None; keep its per-request access log out (it would log query strings).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    _log_uncaught_exceptions()


def log_level_problem(level: str) -> str:
    """Why `level` is not a logging level, or "" when it is one."""
    if isinstance(logging.getLevelName(level.upper()), int):
        return ""
    return f"log_level must be one of DEBUG, INFO, WARNING or ERROR, got {level!r}"


def _is_real_stream(stream: object) -> bool:
    return getattr(stream, "name", "") != os.devnull


def _log_uncaught_exceptions() -> None:
    """Crashes in any thread go to the log file (a windowed app has nowhere else to show them)."""
    log = logging.getLogger("ki2api_tray")

    def on_exception(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        log.critical("unhandled exception", exc_info=(kind, value, tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread else "?"
        log.critical("unhandled exception in thread %s", name, exc_info=args.exc_value)

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception

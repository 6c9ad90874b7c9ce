"""Telling the person about a start-up failure when there is no console: a windowed build has none.

Windows: a native message box (user32 `MessageBoxW` through ctypes). macOS: `osascript`'s `display alert`
(its own process, so no Automation permission prompt). Elsewhere: a desktop notification through
`notify-send` when a graphical session and the tool exist. Every path is best effort and never raises.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

# MessageBoxW flags: OK button, the red error icon, in front of other windows (a tray app has no window).
MB_OK = 0x0
MB_ICONERROR = 0x10
MB_SETFOREGROUND = 0x10000
MB_TOPMOST = 0x40000
_MESSAGE_BOX_STYLE = MB_OK | MB_ICONERROR | MB_SETFOREGROUND | MB_TOPMOST
_TOOL_TIMEOUT = 600.0  # a dialog waits for the person; do not wait forever for a hung one

Runner = Callable[[list[str]], int]


def tell_person(
    title: str,
    message: str,
    *,
    platform: str = sys.platform,
    environ: Mapping[str, str] = os.environ,
    run: Runner | None = None,
    user32: Any = None,
) -> str:
    """Show `message` the way this OS shows an app's error; returns how it was shown ("" when it could not be).

    `run` (a command runner returning the exit code) and `user32` replace the OS calls in tests.
    """
    runner = run or _run
    try:
        if platform == "win32":
            return "message box" if _message_box(title, message, user32) else ""
        if platform == "darwin":
            return "alert" if runner(osascript_alert_command(title, message)) == 0 else ""
        command = notify_send_command(title, message, environ)
        if command is not None and runner(command) == 0:
            return "notification"
    except Exception:  # noqa: BLE001 - telling is a courtesy; the log already has the error
        log.warning("could not show the error to the person", exc_info=True)
    return ""


def osascript_alert_command(title: str, message: str) -> list[str]:
    """`display alert` with the texts passed as arguments, so quotes in them cannot break the script."""
    return [
        "/usr/bin/osascript",
        "-e",
        "on run argv",
        "-e",
        "display alert (item 1 of argv) message (item 2 of argv) as critical buttons {\"OK\"} default button 1",
        "-e",
        "end run",
        title,
        message,
    ]


def notify_send_command(title: str, message: str, environ: Mapping[str, str]) -> list[str] | None:
    """The freedesktop notification command, or None without a graphical session or the tool."""
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        return None
    tool = shutil.which("notify-send", path=environ.get("PATH"))
    if tool is None:
        return None
    return [tool, "--urgency=critical", "--app-name=ki2api", title, message]


def _run(command: list[str]) -> int:
    completed = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=_TOOL_TIMEOUT,
        check=False,
    )
    return completed.returncode


def _message_box(title: str, message: str, user32: Any) -> bool:
    if user32 is None:
        import ctypes

        user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
    # Returns the button pressed (IDOK = 1), or 0 when the box could not be shown.
    return bool(user32.MessageBoxW(None, message, title, _MESSAGE_BOX_STYLE))

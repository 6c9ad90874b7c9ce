"""Small desktop chores for the tray: copy text to the clipboard, open a folder, file or URL.

No extra packages: Win32 through ctypes, the OS's own tools elsewhere (pbcopy, wl-copy, xclip, xsel,
xdg-open). Failures come back as `DesktopError` with a sentence the tray can show; nothing here crashes.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

_TOOL_TIMEOUT = 5.0


class DesktopError(Exception):
    """A clipboard or open action failed; the message says why in words a person understands."""


KIRO_DOWNLOAD_URL = "https://kiro.dev/downloads/"


class DesktopActions(Protocol):
    def copy(self, text: str) -> None: ...

    def open(self, target: str | Path) -> None: ...

    def start(self, program: Path) -> None: ...


def kiro_program(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Path | None:
    """Where the Kiro IDE is installed (its usual places per OS), or None."""
    home = Path(environ.get("USERPROFILE" if platform == "win32" else "HOME", "") or Path.home())
    if platform == "win32":
        local = Path(environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        candidates = [local / "Programs" / "Kiro" / "Kiro.exe"]
    elif platform == "darwin":
        candidates = [Path("/Applications/Kiro.app"), home / "Applications" / "Kiro.app"]
    else:
        found = shutil.which("kiro", path=environ.get("PATH"))
        candidates = [Path(found)] if found else []
        candidates += [
            Path("/usr/share/kiro/kiro"),
            Path("/opt/Kiro/kiro"),
            home / ".local" / "share" / "kiro" / "kiro",
        ]
    return next((c for c in candidates if c.exists()), None)


def child_environment(environ: Mapping[str, str], frozen: bool) -> dict[str, str]:
    """The environment for programs we launch, without the frozen app's library path.

    PyInstaller's Linux bootloader prepends its bundle to LD_LIBRARY_PATH and keeps the original in
    LD_LIBRARY_PATH_ORIG; xdg-open and the browsers it starts must not load our bundled libraries.
    """
    env = dict(environ)
    if "LD_LIBRARY_PATH_ORIG" in env:
        env["LD_LIBRARY_PATH"] = env.pop("LD_LIBRARY_PATH_ORIG")
    elif frozen:
        env.pop("LD_LIBRARY_PATH", None)
    return env


def clipboard_commands(environ: Mapping[str, str], platform: str = sys.platform) -> list[list[str]]:
    """The clipboard tools to try, best first, that are installed here."""
    if platform == "darwin":
        return [["/usr/bin/pbcopy"]]
    candidates: list[list[str]] = []
    if environ.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    return [cmd for cmd in candidates if shutil.which(cmd[0], path=environ.get("PATH"))]


class Desktop:
    """The real implementation for the running OS.

    `owner_window` returns the window that owns the clipboard on Windows (the tray icon's hidden window).
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        platform: str = sys.platform,
        owner_window: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._environ = environ if environ is not None else os.environ
        self._platform = platform
        self._frozen = bool(getattr(sys, "frozen", False))
        self._owner_window = owner_window

    def copy(self, text: str) -> None:
        if self._platform == "win32":
            copy_win32(text, self._owner_window())
            return
        commands = clipboard_commands(self._environ, self._platform)
        if not commands:
            raise DesktopError("no clipboard tool found (install wl-clipboard, xclip or xsel)")
        env = child_environment(self._environ, self._frozen)
        env.setdefault("LANG", "en_US.UTF-8")  # pbcopy reads its input in the locale's encoding
        failures = []
        for command in commands:
            try:
                # The X11/Wayland tools fork a child that keeps serving the selection; with DEVNULL
                # outputs run() returns as soon as the parent exits instead of waiting for that child.
                subprocess.run(
                    command,
                    input=text.encode("utf-8"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    timeout=_TOOL_TIMEOUT,
                    check=True,
                )
                return
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("clipboard tool %s failed: %s", command[0], exc)
                failures.append(command[0])
        raise DesktopError(f"{', '.join(failures)} failed")

    def start(self, program: Path) -> None:
        """Start an installed program (Kiro): an .app or .exe opens like a document, elsewhere it is run."""
        if self._platform in ("win32", "darwin"):
            self.open(program)
            return
        try:
            subprocess.Popen(
                [os.fspath(program)],
                env=child_environment(self._environ, self._frozen),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise DesktopError(exc.strerror or str(exc)) from exc

    def open(self, target: str | Path) -> None:
        where = os.fspath(target)
        try:
            if self._platform == "win32":
                os.startfile(where)  # type: ignore[attr-defined]  # Explorer, default browser or editor
            elif self._platform == "darwin":
                subprocess.Popen(["/usr/bin/open", where])  # Finder apps get PATH=/usr/bin:/bin only
            else:
                subprocess.Popen(
                    ["xdg-open", where],
                    env=child_environment(self._environ, self._frozen),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
        except OSError as exc:
            raise DesktopError(exc.strerror or str(exc)) from exc


def copy_win32(text: str, owner: int | None, user32: Any = None, kernel32: Any = None) -> None:
    """CF_UNICODETEXT through user32/kernel32; another program may hold the clipboard for a moment.

    The clipboard is opened *with a window*: "If an application calls OpenClipboard with hWnd set to NULL,
    EmptyClipboard sets the clipboard owner to NULL; this causes SetClipboardData to fail" (Microsoft's
    OpenClipboard documentation). `user32`/`kernel32` replace the DLLs in tests.
    """
    import ctypes

    if user32 is None or kernel32 is None:
        user32, kernel32 = _win32_dlls()
    gmem_moveable, cf_unicodetext = 0x0002, 13

    deadline = time.monotonic() + 0.5
    while not user32.OpenClipboard(owner):
        if time.monotonic() > deadline:
            raise DesktopError("another program is holding the clipboard")
        time.sleep(0.01)
    try:
        user32.EmptyClipboard()
        data = text.encode("utf-16-le") + b"\x00\x00"
        handle = kernel32.GlobalAlloc(gmem_moveable, len(data))
        if not handle:
            raise DesktopError("out of memory")
        pointer = kernel32.GlobalLock(handle)
        ctypes.memmove(pointer, data, len(data))
        kernel32.GlobalUnlock(handle)
        if not user32.SetClipboardData(cf_unicodetext, handle):
            kernel32.GlobalFree(handle)  # still ours when the clipboard did not take it
            raise DesktopError(f"Windows refused the clipboard data (error {ctypes.get_last_error()})")  # type: ignore[attr-defined]
    finally:
        user32.CloseClipboard()


def _win32_dlls() -> tuple[Any, Any]:
    import ctypes
    from ctypes import wintypes

    user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    user32.OpenClipboard.argtypes = [wintypes.HWND]
    user32.SetClipboardData.argtypes = [wintypes.UINT, wintypes.HANDLE]
    user32.SetClipboardData.restype = wintypes.HANDLE
    kernel32.GlobalAlloc.argtypes = [wintypes.UINT, ctypes.c_size_t]
    kernel32.GlobalAlloc.restype = wintypes.HGLOBAL
    kernel32.GlobalLock.argtypes = [wintypes.HGLOBAL]
    kernel32.GlobalLock.restype = ctypes.c_void_p
    kernel32.GlobalUnlock.argtypes = [wintypes.HGLOBAL]
    kernel32.GlobalFree.argtypes = [wintypes.HGLOBAL]
    kernel32.GlobalFree.restype = wintypes.HGLOBAL
    return user32, kernel32

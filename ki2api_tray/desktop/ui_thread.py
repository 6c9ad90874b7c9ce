"""UiThread: runs every change to the tray (menu, icon, title, notifications) on the thread the backend owns.

pystray marshals nothing on Windows and macOS (pystray#60). On macOS the work hops to the AppKit main loop
with `PyObjCTools.AppHelper.callAfter` (macOS 26+ kills a process that touches the status item elsewhere).
On Windows it is posted as a window message to the icon's own window, so a menu is never rebuilt from a timer
thread while `TrackPopupMenuEx` shows the old one on the icon's thread. GTK marshals through GLib itself and
the X11 backend has no menu: there the call runs at once, serialised by a lock.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# WM_USER + 0x4B2: a private message for the icon's window (pystray itself uses WM_USER + 10 and + 11).
WM_UI_CALL = 0x0400 + 0x4B2

PostMessage = Callable[[int, int], bool]
Call = tuple[Callable[..., object], tuple[object, ...]]


class UiThread:
    """Where tray mutations run. `call(fn, *args)` is the one way the tray changes what a person sees."""

    def __init__(self, icon: Any, platform: str = sys.platform, post_message: PostMessage | None = None) -> None:
        self._icon = icon
        self._lock = threading.RLock()
        self._pending: deque[Call] = deque()
        self.owner: threading.Thread | None = None  # the thread that runs the icon's loop, once known
        handlers = getattr(icon, "_message_handlers", None)
        if platform == "darwin":
            self.kind = "appkit"
        elif isinstance(handlers, dict) and hasattr(icon, "_hwnd"):
            # pystray's win32 backend: window messages dispatched through `_message_handlers` (the X11 backend
            # has such a dict too, for X client messages, but no window handle and a loop that marshals itself).
            self.kind = "window message"
            handlers[WM_UI_CALL] = self._drain
            self._post = post_message or _post_message_win32
        else:
            self.kind = "direct"

    def call(self, fn: Callable[..., object], *args: object) -> None:
        if self.kind == "appkit":
            from PyObjCTools import AppHelper  # pyobjc comes with pystray on macOS

            AppHelper.callAfter(fn, *args)
            return
        hwnd = getattr(self._icon, "_hwnd", None)
        if self.kind == "direct" or hwnd is None or threading.current_thread() is self.owner:
            # No message loop yet (the window is created when it starts), or already on its thread.
            with self._lock:
                fn(*args)
            return
        with self._lock:
            self._pending.append((fn, args))
            first = len(self._pending) == 1
        if first and not self._post(hwnd, WM_UI_CALL):
            # The window is gone (the loop ended): nothing is shown any more, so there is nothing to change.
            with self._lock:
                dropped = len(self._pending)
                self._pending.clear()
            log.debug("tray window gone; dropped %d UI call(s)", dropped)

    def _drain(self, wparam: int, lparam: int) -> int:
        """Runs on the icon's thread, inside pystray's window procedure."""
        while True:
            with self._lock:
                if not self._pending:
                    return 0
                fn, args = self._pending.popleft()
            try:
                fn(*args)
            except Exception:  # one failed change must not stop the ones queued behind it
                log.warning("tray update failed", exc_info=True)


def _post_message_win32(hwnd: int, message: int) -> bool:
    import ctypes
    from ctypes import wintypes

    user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
    user32.PostMessageW.argtypes = [wintypes.HWND, wintypes.UINT, wintypes.WPARAM, wintypes.LPARAM]
    user32.PostMessageW.restype = wintypes.BOOL
    return bool(user32.PostMessageW(hwnd, message, 0, 0))

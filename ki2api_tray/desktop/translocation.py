"""Where the app runs from, and whether a start-at-login entry may point there (macOS).

An app opened from Downloads while still quarantined runs from a random read-only copy that macOS makes for
it (App Translocation: `/private/var/folders/<..>/<..>/T/AppTranslocation/<UUID>/d/ki2api-tray.app`); an app
opened inside the mounted disk image runs from `/Volumes/...`, gone once the image is ejected. A LaunchAgent
written with either path fails at the next login, so the person is asked to move the app first.
"""

from __future__ import annotations

import os
import sys
from pathlib import PurePosixPath

MOVE_TO_APPLICATIONS = (
    "macOS is running ki2api from a temporary copy ({where}). Move ki2api-tray.app to the Applications "
    "folder and open it from there; start at login stays off until then."
)


def app_bundle(executable: str) -> PurePosixPath | None:
    """The `.app` folder an executable lives in, or None outside a bundle."""
    path = PurePosixPath(executable)
    for folder in (path, *path.parents):
        if folder.suffix == ".app":
            return folder
    return None


def is_translocated(executable: str) -> bool:
    """Running from App Translocation's randomised copy (a quarantined app opened where it was downloaded)."""
    return "/AppTranslocation/" in executable


def is_on_disk_image(executable: str, read_only: bool | None = None) -> bool:
    """Running from a mounted, read-only volume such as the downloaded .dmg (not an external app drive)."""
    if not executable.startswith("/Volumes/"):
        return False
    if read_only is None:
        try:
            read_only = bool(os.statvfs(executable).f_flag & os.ST_RDONLY)
        except OSError:
            return False
    return read_only


def placement_problem(executable: str = sys.executable, platform: str = sys.platform) -> str:
    """A sentence asking the person to move the app, or "" when it runs from a place that lasts."""
    if platform != "darwin":
        return ""
    if is_translocated(executable):
        return MOVE_TO_APPLICATIONS.format(where="App Translocation")
    if is_on_disk_image(executable):
        return MOVE_TO_APPLICATIONS.format(where="the disk image")
    return ""

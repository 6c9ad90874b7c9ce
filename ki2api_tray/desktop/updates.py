"""UpdateCheck: is there a newer ki2api release? Asked of GitHub at most once a day, in the background.

The answer only informs: a tray item and a status-page line link to the release page, and the person downloads
it; ki2api never replaces itself. The last check is remembered in the state folder (`update-check.json`), so
restarts within a day ask nothing. `KI2API_UPDATE_CHECK=0` (or `"update_check": false`) turns it off;
`KI2API_UPDATE_URL` names the endpoint (GitHub's "latest release" API by default; tests use a loopback fake).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Settings
from ..state import AppState, Release

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(days=1)
TIMEOUT = 10.0
FILE_NAME = "update-check.json"


def version_key(version: str) -> tuple[int, ...] | None:
    """`v1.2.3` / `1.2` as comparable numbers; None for anything that is not a plain release version."""
    match = re.fullmatch(r"v?(\d+(?:\.\d+)*)", version.strip())
    if not match:
        return None
    numbers = [int(part) for part in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()  # 1.2.0 == 1.2
    return tuple(numbers)


def newer_release(data: Any, current: str = __version__) -> Release | None:
    """The release described by GitHub's JSON when it is newer than `current` and links to a web page."""
    if not isinstance(data, dict):
        return None
    tag, url = data.get("tag_name"), data.get("html_url")
    if not isinstance(tag, str) or not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    theirs, ours = version_key(tag), version_key(current)
    if theirs is None or ours is None or theirs <= ours:
        return None
    return Release(version=tag.strip().removeprefix("v"), url=url)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class UpdateCheck:
    def __init__(
        self,
        settings: Settings,
        state: AppState,
        *,
        clock: Callable[[], datetime] = _utc_now,
        current: str = __version__,
    ) -> None:
        self._settings = settings
        self._state = state
        self._clock = clock
        self._current = current
        self._thread: threading.Thread | None = None

    @property
    def record_file(self) -> Path:
        return self._settings.app_paths.state_dir / FILE_NAME

    def start(self) -> None:
        """Check in a background thread; returns at once, so start-up never waits for the network."""
        if not self._settings.update_check or self._thread is not None:
            return
        self._thread = threading.Thread(target=self.check, name="ki2api-update-check", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def check(self) -> Release | None:
        """Ask (or reuse today's answer) and publish a newer release to AppState; never raises."""
        try:
            data = self._remembered()
            if data is None:
                data = self._ask()
            release = newer_release(data.get("release"), self._current)
        except Exception:  # an update hint is never worth a crash
            log.warning("the update check failed", exc_info=True)
            return None
        if release is not None:
            log.info("ki2api %s is available: %s", release.version, release.url)
            self._state.update(update=release)
        return release

    def _remembered(self) -> dict[str, Any] | None:
        """Today's answer from the state folder, or None when it is older than a day (or missing)."""
        try:
            data = json.loads(self.record_file.read_text(encoding="utf-8"))
            checked = datetime.fromisoformat(data["checked_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        now = self._clock()
        if not isinstance(data, dict) or checked.tzinfo is None or not now - CHECK_EVERY < checked <= now:
            return None
        return data

    def _ask(self) -> dict[str, Any]:
        import httpx  # only this thread needs it, and only once a day

        release: Any = None
        try:
            with httpx.Client(timeout=TIMEOUT, trust_env=True, follow_redirects=True) as http:
                response = http.get(
                    self._settings.update_url,
                    headers={"Accept": "application/vnd.github+json", "User-Agent": f"ki2api-tray/{self._current}"},
                )
            if response.status_code == 200:
                release = response.json()
            else:
                log.info("the update check got HTTP %s from %s", response.status_code, self._settings.update_url)
        except (httpx.HTTPError, ValueError) as exc:
            log.info("the update check could not reach %s (%s)", self._settings.update_url, type(exc).__name__)
        # A failed attempt counts too: once a day means once a day, also while GitHub is unreachable.
        data = {"checked_at": self._clock().isoformat(), "release": _kept(release)}
        try:
            self.record_file.parent.mkdir(parents=True, exist_ok=True)
            self.record_file.write_text(json.dumps(data, indent=2), encoding="utf-8")
        except OSError as exc:
            log.info("could not remember the update check in %s (%s)", self.record_file, exc.strerror)
        return data


def _kept(release: Any) -> dict[str, str] | None:
    """The two fields we use, not GitHub's whole answer."""
    if not isinstance(release, dict):
        return None
    kept = {key: release[key] for key in ("tag_name", "html_url") if isinstance(release.get(key), str)}
    return kept or None

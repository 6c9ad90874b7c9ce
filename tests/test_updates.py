"""The update check against a fake GitHub releases endpoint on loopback: at most once a day, off with one
setting, never in the way of start-up, and a tray item and status-page line linking to the newer release."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from ki2api_tray import __version__
from ki2api_tray.api.status_page import render_status_page
from ki2api_tray.config import Settings, load_settings
from ki2api_tray.desktop.updates import UpdateCheck, newer_release, version_key
from ki2api_tray.state import AppState, Release, Status
from tests.test_tray import make_tray, running, texts

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
PAGE = "https://github.com/ki2api/ki2api-tray/releases/tag/v9.1.0"


@dataclass
class FakeReleases:
    """GitHub's `GET /repos/{owner}/{repo}/releases/latest`, with a gate to hold answers back."""

    url: str
    answer: Any = field(default_factory=lambda: {"tag_name": "v9.1.0", "html_url": PAGE, "body": "notes"})
    status: int = 200
    requests: list[dict[str, str]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    asked: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def releases() -> Iterator[FakeReleases]:
    fake: FakeReleases

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            fake.requests.append(dict(self.headers))
            fake.asked.set()
            fake.gate.wait(10)
            body = json.dumps(fake.answer).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeReleases(url=f"http://127.0.0.1:{server.server_address[1]}/repos/ki2api/ki2api-tray/releases/latest")
    fake.gate.set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.gate.set()
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def checker(releases: FakeReleases, clock: Clock, state: AppState | None = None, **settings: Any) -> UpdateCheck:
    base = replace(Settings(), update_url=releases.url, **settings)
    return UpdateCheck(base, state or AppState(), clock=clock, current="1.0.0")


def test_a_newer_release_is_published_once_a_day(isolated_home: Path, releases: FakeReleases) -> None:
    clock, state = Clock(), AppState()
    assert checker(releases, clock, state).check() == Release("9.1.0", PAGE)
    assert state.snapshot().update == Release("9.1.0", PAGE)
    assert len(releases.requests) == 1
    assert releases.requests[0]["User-Agent"].startswith("ki2api-tray/")

    # Restarts within the day ask nothing and still know about the release.
    clock.now += timedelta(hours=23)
    again = AppState()
    assert checker(releases, clock, again).check() == Release("9.1.0", PAGE)
    assert again.snapshot().update == Release("9.1.0", PAGE)
    assert len(releases.requests) == 1

    clock.now += timedelta(hours=2)
    checker(releases, clock).check()
    assert len(releases.requests) == 2


def test_a_failed_check_also_waits_a_day(isolated_home: Path, releases: FakeReleases) -> None:
    clock = Clock()
    releases.status = 503
    assert checker(releases, clock).check() is None
    releases.status = 200
    clock.now += timedelta(hours=1)
    assert checker(releases, clock).check() is None  # GitHub is not asked again within the day
    assert len(releases.requests) == 1


def test_the_same_or_an_older_release_shows_nothing(isolated_home: Path, releases: FakeReleases) -> None:
    state = AppState()
    releases.answer = {"tag_name": "v1.0.0", "html_url": PAGE}
    assert checker(releases, Clock(), state).check() is None
    assert state.snapshot().update is None


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"tag_name": "v9.0.0"},
        {"tag_name": "nightly", "html_url": PAGE},
        {"tag_name": "v9", "html_url": "javascript:alert(1)"},
    ],
)
def test_odd_answers_show_nothing_and_break_nothing(isolated_home: Path, releases: FakeReleases, answer: Any) -> None:
    releases.answer = answer
    assert checker(releases, Clock()).check() is None


def test_one_setting_turns_it_off(isolated_home: Path, releases: FakeReleases) -> None:
    settings = load_settings(environ={**os.environ, "KI2API_UPDATE_CHECK": "0", "KI2API_UPDATE_URL": releases.url})
    assert not settings.update_check
    check = UpdateCheck(settings, AppState())
    check.start()
    check.join(5)
    assert releases.requests == []


def test_start_returns_while_github_is_still_answering(isolated_home: Path, releases: FakeReleases) -> None:
    releases.gate.clear()  # the endpoint holds its answer until we let it go
    state = AppState()
    check = checker(releases, Clock(), state)
    check.start()  # if this waited for the answer, the test would never get past it
    assert releases.asked.wait(10)
    assert state.snapshot().update is None
    releases.gate.set()
    check.join(10)
    assert state.snapshot().update == Release("9.1.0", PAGE)


def test_versions_compare_as_numbers() -> None:
    assert version_key("v0.10.0") > version_key("0.9.9")  # type: ignore[operator]
    assert version_key("1.2.0") == version_key("v1.2")
    assert version_key("1.2.0rc1") is None
    assert newer_release({"tag_name": "v0.1.1", "html_url": PAGE}, current="0.1.0") == Release("0.1.1", PAGE)


def test_tray_item_and_status_page_line_link_to_the_release() -> None:
    tray, state, _ = make_tray(running())
    assert not any(text.startswith("Update available") for text in texts(tray))
    state.update(update=Release("9.1.0", PAGE))
    assert "Update available: ki2api 9.1.0…" in texts(tray)
    item = next(i for i in tray.icon.menu if i.text.startswith("Update available"))
    item(tray.icon)
    assert tray.desktop.opened == [PAGE]  # type: ignore[attr-defined]

    url = "http://127.0.0.1:8989/v1"
    page = render_status_page(Status(update=Release("9.1.0", PAGE)), base_url=url, language="en")
    assert f'<a href="{PAGE}">release page</a>' in page and f"(you run {__version__})" in page
    assert "release page" not in render_status_page(Status(), base_url=url, language="en")


def test_serve_shows_a_newer_release_on_its_status_page(kiro_env: Any, releases: FakeReleases) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "KI2API_UPDATE_CHECK": "1", "KI2API_UPDATE_URL": releases.url, "KI2API_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ki2api_tray", "serve"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert releases.asked.wait(30)
        deadline = datetime.now() + timedelta(seconds=20)
        page = ""
        while datetime.now() < deadline and "release page" not in page:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except httpx.HTTPError:
                pass
        assert f'href="{PAGE}"' in page
    finally:
        process.terminate()
        process.communicate(timeout=20)

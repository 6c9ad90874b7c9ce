"""The status page in a real browser: headless Chromium renders the dashboard and the test reads values back.

Chromium comes from Debian's package (`.ci/run` installs it). `--virtual-time-budget` lets the page's script
fetch `/api/usage` and `/api/requests` and draw before the DOM is dumped. Screenshots of the light and
dark pages land in the test's temporary folder for a person to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from tests.fixtures_proxy import Proxy, start_proxy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
STATIC = Path(__file__).resolve().parent.parent / "ki2api_tray" / "api" / "static"
MODEL = "claude-sonnet-4-20250514"


def chromium(url: str, profile: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=4000",
        *extra,
        url,
    ]
    done = subprocess.run(command, capture_output=True, timeout=90, check=True)
    return done.stdout.decode("utf-8")


class Page(HTMLParser):
    """The rendered DOM, reduced to what the tests read: text by element id, and the attributes of tags."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.visible = ""  # all text outside <script> and <style>
        self._open: list[str | None] = []
        self._hidden_depth = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append((tag, values))
        if tag in ("script", "style"):
            self._hidden_depth += 1
        if tag in ("br", "input", "meta", "img", "link", "rect", "line"):
            return
        self._open.append(values.get("id"))
        if values.get("id"):
            self.text.setdefault(values["id"], "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden_depth -= 1
        if tag not in ("br", "input", "meta", "img", "link", "rect", "line") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.visible += data + "\n"
        for ident in self._open:
            if ident:
                self.text[ident] += data

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


@pytest.fixture
def busy_proxy(proxy: Proxy) -> Proxy:
    client = proxy.openai()
    for n in range(3):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"question {n}"}])
    long_name = "mcp__a_server_with_a_long_name__and_a_tool_with_an_even_longer_name_than_kiro_allows"
    tool = {"type": "function", "function": {"name": long_name, "parameters": {"type": "object"}}}
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "use it"}], tools=[tool])
    with pytest.raises(Exception, match="Improperly formed"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "[[fake:error:400]]"}])
    usage = proxy.runtime.usage
    assert usage is not None and usage.flush()
    # The forecast needs the plan's figures, which the server reads from Kiro shortly after it starts.
    deadline = time.monotonic() + 60
    while proxy.runtime.state.snapshot().quota is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proxy.runtime.state.snapshot().quota is not None, "ki2api never read the quota"
    return proxy


def test_dashboard_renders_usage_in_english(busy_proxy: Proxy, tmp_path: Path) -> None:
    rows = httpx.get(busy_proxy.url + "/api/requests", headers={"x-api-key": DEFAULT_API_KEY}).json()["requests"]
    failed, renamed = rows[0], rows[1]
    page = Page(chromium(f"{busy_proxy.url}/?lang=en&request={failed['id']}", tmp_path / "profile", "--dump-dom"))

    assert page.text["stat-requests"] == "5"
    assert page.text["stat-credits"] == "0.48"  # four answers at the fake's 0.12 credits each
    assert page.text["stat-error-rate"] == "20%"
    assert re.fullmatch(r"p50 \d[\d,.]* (ms|s) · p95 \d[\d,.]* (ms|s)", page.text["stat-ttfb"])
    credits = page.all("rect", **{"data-model": "claude-sonnet-4", "data-field": "credits"})
    assert sum(float(bar["data-value"]) for bar in credits) == pytest.approx(0.48)
    requests = page.all("rect", **{"data-model": "claude-sonnet-4", "data-field": "requests"})
    assert sum(int(bar["data-value"]) for bar in requests) == 5
    assert page.all("li", **{"data-model": "claude-sonnet-4"})  # the legend
    assert [r["data-status"] for r in page.all("tr") if "data-status" in r] == ["400", "200", "200", "200", "200"]
    # The detail of the failed request says what Kiro answered.
    assert "Improperly formed request" in page.text["detail-error"]
    assert page.text["forecast"].startswith("At this week's pace")
    assert page.text["key-line"].startswith(f"API key: {DEFAULT_API_KEY}")

    detail = Page(chromium(f"{busy_proxy.url}/?lang=en&request={renamed['id']}", tmp_path / "profile", "--dump-dom"))
    changes = detail.all("li", **{"data-kind": "tool_renamed"})
    assert changes, detail.text.get("detail", "")
    assert "Tool renamed to fit Kiro's 64-character limit" in detail.text["detail-changes"]


def test_dashboard_in_chinese_has_no_english_words_of_its_own(busy_proxy: Proxy, tmp_path: Path) -> None:
    html = chromium(f"{busy_proxy.url}/", tmp_path / "profile", "--dump-dom", "--lang=zh-CN", "--accept-lang=zh-CN")
    page = Page(html)
    assert '<html lang="zh-CN"' in html
    assert page.text["stat-requests"] == "5"
    assert page.text["stat-error-rate"] == "20%"
    assert "毫秒" in page.text["stat-ttfb"] or "秒" in page.text["stat-ttfb"]
    assert page.text["forecast"].startswith("按本周的用量")
    english = json.loads((STATIC / "dashboard.en.json").read_text(encoding="utf-8"))
    chinese = json.loads((STATIC / "dashboard.zh.json").read_text(encoding="utf-8"))
    for name, words in english.items():
        if words != chinese[name] and len(words) > 3 and "{" not in words:
            assert words not in page.visible, f"English {name!r} on the Chinese page"
    for line in ("Token:", "Quota:", "Requests today", "expires in", "Read from", "API key:"):
        assert line not in page.visible


def test_a_custom_key_is_hidden_and_asked_for(kiro_env: object, tmp_path: Path) -> None:
    secret = "my-own-secret-key-7"
    runtime = start_proxy(kiro_env, api_key=secret)  # type: ignore[arg-type]
    try:
        url = f"http://{runtime.state.snapshot().address}"
        html = chromium(f"{url}/?lang=en", tmp_path / "profile", "--dump-dom")
        page = Page(html)
        assert secret not in html
        assert "a custom key is set" in page.text["key-line"]
        assert page.all("form", id="key-form") and "hidden" not in page.all("form", id="key-form")[0]
        assert page.text["stat-requests"] == ""
    finally:
        runtime.service.close()


def test_screenshots_light_and_dark(busy_proxy: Proxy, tmp_path: Path) -> None:
    for theme, language in (("light", "en"), ("dark", "zh")):
        shot = tmp_path / f"status-{theme}-{language}.png"
        chromium(
            f"{busy_proxy.url}/?lang={language}&theme={theme}",
            tmp_path / "profile",
            "--window-size=1200,1800",
            f"--screenshot={shot}",
            "--hide-scrollbars",
        )
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000

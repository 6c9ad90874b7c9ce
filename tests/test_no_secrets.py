"""No token ever leaves ki2api: not in logs, /health, the status page, the tray text, reports or error bodies.

One scenario walks every path that handles tokens (refresh, write-back, a 403 from Kiro, a refused
refresh, wrong API keys, upstream errors) while recording everything a person or another program could
read; then each secret seen during the run is searched for in all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest

from ki2api_tray.i18n import Translator
from ki2api_tray.report import status_report
from ki2api_tray.wording import quota_line, requests_line, status_line, token_line, tooltip
from tests.fake_kiro import Account, write_token_file
from tests.fixtures_kiro import KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

API_KEY = "sk-ki2api-private-" + "q7Zr4wLx0pN2vB8mT5sY"
MODEL = "claude-sonnet-4.5"
# Showing the first few characters of a token is allowed (design.md §4); anything from here on is not.
ALLOWED_PREFIX = 8


class Exposure:
    """Everything readable from outside the process, gathered as text."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def add_response(self, where: str, response: httpx.Response) -> int:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.add(where, f"{response.status_code}\n{headers}\n{response.text}")
        return response.status_code

    def leaks(self, secret: str) -> list[str]:
        needle = secret[ALLOWED_PREFIX:]
        return [where for where, text in self.texts if needle in text]


class Secrets:
    """Every access and refresh token the account had at any point of the run."""

    def __init__(self, account: Account) -> None:
        self._account = account
        self.values: set[str] = set()
        self.note()

    def note(self) -> None:
        self.values |= {self._account.refresh_token, *self._account.valid_access_tokens, self._account.access_token}


@pytest.fixture
def running(kiro_env: KiroEnv) -> Iterator[Proxy]:
    runtime = start_proxy(kiro_env, api_key=API_KEY)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    finally:
        runtime.service.close()


def _chat(client: httpx.Client, api: str, content: str, stream: bool) -> httpx.Response:
    messages = [{"role": "user", "content": content}]
    if api == "openai":
        return client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "stream": stream})
    body = {"model": MODEL, "max_tokens": 64, "messages": messages, "stream": stream}
    return client.post("/v1/messages", json=body)


def _tray_text(proxy: Proxy) -> str:
    status, tr, now = proxy.runtime.state.snapshot(), Translator(), datetime.now(timezone.utc)
    return "\n".join(
        [
            status_line(status, tr),
            token_line(status.token, tr, now),
            requests_line(status, tr),
            quota_line(status.quota, tr),
            tooltip(status, tr, now),
            repr(status),
        ]
    )


def test_no_token_in_logs_health_status_page_or_errors(running: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything, httpx and httpcore included: more than the log file keeps
    kiro, fake, runtime = running.kiro, running.kiro.fake, running.runtime
    secrets = Secrets(kiro.account)
    seen = Exposure()
    good = {"Authorization": f"Bearer {API_KEY}"}

    with httpx.Client(base_url=running.url, headers=good, timeout=30) as client:
        for api in ("openai", "anthropic"):
            for stream in (False, True):
                seen.add_response(f"{api} stream={stream}", _chat(client, api, "hello", stream))

        # Kiro rejects the token (403 "bearer token invalid"): ki2api refreshes and retries.
        fake.accounts.expire_access_tokens(kiro.account)
        assert seen.add_response("after a 403", _chat(client, "openai", "again", False)) == 200
        secrets.note()

        # The token on disk expires: ki2api refreshes before the request and writes the file back.
        write_token_file(kiro.home, kiro.account, expires_in=-60)
        runtime.tokens.reload()
        assert seen.add_response("after expiry", _chat(client, "anthropic", "once more", True)) == 200
        secrets.note()

        # The login service refuses the refresh token, and then cannot be reached at all.
        write_token_file(kiro.home, kiro.account, expires_in=-60)
        runtime.tokens.reload()
        fake.fail_next(
            "/refreshToken", 400, {"error": "invalid_grant", "error_description": "bad " + kiro.account.refresh_token}
        )
        assert seen.add_response("refresh refused", _chat(client, "openai", "x", False)) == 403
        fake.accounts.refresh_social(kiro.account.refresh_token)  # a new login from Kiro; then the service is down
        write_token_file(kiro.home, kiro.account, expires_in=-60)
        runtime.tokens.reload()
        fake.fail_next("/refreshToken", 503, {"message": "down " + kiro.account.refresh_token}, times=50)
        assert seen.add_response("refresh unreachable", _chat(client, "anthropic", "x", False)) == 503
        fake.stop_failing("/refreshToken")
        secrets.note()

        # Kiro's own errors, and clients with the wrong key or one of our tokens as the key.
        seen.add_response("kiro 403", _chat(client, "openai", "[[fake:error:403]]", False))
        seen.add_response("kiro 500", _chat(client, "anthropic", "[[fake:error:500]]", True))
        for key in ("wrong", kiro.account.access_token, API_KEY[:-1]):
            for path in ("/v1/models", "/v1/chat/completions", "/v1/messages"):
                response = client.post(path, json={}, headers={"Authorization": f"Bearer {key}", "x-api-key": key})
                seen.add_response(f"bad key on {path}", response)

        seen.add_response("/health", client.get("/health"))
        seen.add_response("status page", client.get("/"))
        seen.add_response("/v1/models", client.get("/v1/models"))

    seen.add("tray text", _tray_text(running))
    report = status_report(runtime.settings)
    seen.add("ki2api-tray status", report.as_text())
    seen.add("ki2api-tray status --json", report.as_json())
    seen.add("token store", repr(runtime.tokens) + "\n" + runtime.tokens.describe())
    seen.add("settings", repr(runtime.settings))
    seen.add("log", caplog.text)  # formatted records, tracebacks included

    assert len(secrets.values) >= 4, "the scenario should have rotated the tokens at least once"
    assert fake.accounts.refresh_count >= 2
    for secret in [*secrets.values, API_KEY]:
        assert seen.leaks(secret) == [], f"a secret starting {secret[:ALLOWED_PREFIX]} leaked"

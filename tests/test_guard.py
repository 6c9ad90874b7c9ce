"""The request guard, tried as a hostile web page would: a rebound `Host`, a foreign `Origin`, a preflight.

Each refusal must be a 403 in the called API's shape and must never reach Kiro; allowed pages must get
CORS answers a browser accepts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ki2api_tray.api.server import create_app
from ki2api_tray.config import DEFAULT_API_KEY, load_settings
from ki2api_tray.kiro.tokens import TokenStore
from ki2api_tray.service import StateReporter
from ki2api_tray.state import AppState
from tests.fixtures_kiro import KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

MODEL = "claude-sonnet-4.5"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
KEY = {"authorization": f"Bearer {DEFAULT_API_KEY}"}
ANTHROPIC_KEY = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


def port_of(proxy: Proxy) -> int:
    return int(proxy.url.rsplit(":", 1)[1])


def chat(proxy: Proxy, **headers: str) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/chat/completions", json=CHAT, headers={**KEY, **headers}, timeout=30)


def message(proxy: Proxy, **headers: str) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/messages", json=MESSAGE, headers={**ANTHROPIC_KEY, **headers}, timeout=30)


@pytest.fixture
def proxy_with(kiro_env: KiroEnv) -> Iterator[Any]:
    """Start a proxy with extra settings: `proxy_with(allowed_hosts=...)`."""
    started = []

    def start(**overrides: Any) -> Proxy:
        runtime = start_proxy(kiro_env, **overrides)
        started.append(runtime)
        return Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)

    yield start
    for runtime in started:
        runtime.service.close()


# --- Host (DNS rebinding) ---------------------------------------------------------------------------------


def test_rebound_host_is_refused_in_each_api_shape(proxy: Proxy) -> None:
    rebound = {"host": f"attacker.example:{port_of(proxy)}"}
    openai_answer = chat(proxy, **rebound)
    anthropic_answer = message(proxy, **rebound)
    pages = [httpx.get(f"{proxy.url}{path}", headers=rebound, timeout=10) for path in ("/", "/health", "/v1/models")]
    assert openai_answer.status_code == 403
    assert openai_answer.json()["error"]["code"] == "host_not_allowed"
    assert "KI2API_ALLOWED_HOSTS" in openai_answer.json()["error"]["message"]
    assert anthropic_answer.status_code == 403
    assert anthropic_answer.json()["type"] == "error"
    assert anthropic_answer.json()["error"]["type"] == "permission_error"
    assert [p.status_code for p in pages] == [403, 403, 403]
    assert pages[0].headers["content-type"].startswith("application/json")  # not the status page
    assert proxy.kiro.fake.chat_requests() == []


def test_names_of_this_machine_are_served(proxy: Proxy) -> None:
    port = port_of(proxy)
    names = ["localhost", f"localhost:{port}", "127.0.0.1", f"127.0.0.1:{port}", "[::1]", f"[::1]:{port}", "LOCALHOST"]
    seen = {name: httpx.get(f"{proxy.url}/health", headers={"host": name}, timeout=10).status_code for name in names}
    assert seen == {name: 200 for name in names}
    assert chat(proxy, host=f"localhost:{port}").status_code == 200


def test_allowed_hosts_setting_adds_names(proxy_with: Any) -> None:
    proxy = proxy_with(allowed_hosts="ki2api.lan, *.box")
    seen = {
        name: httpx.get(f"{proxy.url}/health", headers={"host": name}, timeout=10).status_code
        for name in ("ki2api.lan:8989", "pc.box", "localhost", "ki2api.lan.attacker.example", "box")
    }
    assert seen == {
        "ki2api.lan:8989": 200,
        "pc.box": 200,
        "localhost": 200,
        "ki2api.lan.attacker.example": 403,
        "box": 403,
    }


def off_loopback_status(host_header: str, **overrides: Any) -> int:
    """The status of `/health` from an app whose settings listen on every interface (never bound here)."""
    settings = load_settings({"host": "0.0.0.0", "api_key": "a-long-custom-key-0123456789", **overrides})
    state = AppState()
    app = create_app(settings, TokenStore(settings), StateReporter(state), state.snapshot)

    async def ask() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            return (await client.get("/health", headers={"host": host_header})).status_code

    return asyncio.run(ask())


def test_off_loopback_the_host_check_is_off_unless_hosts_are_listed(kiro_env: KiroEnv) -> None:
    assert off_loopback_status("192.168.1.20:8989") == 200
    assert off_loopback_status("ki2api.lan", allowed_hosts="ki2api.lan") == 200
    assert off_loopback_status("192.168.1.20:8989", allowed_hosts="ki2api.lan") == 403


# --- Origin and CORS ------------------------------------------------------------------------------------


def test_foreign_origins_are_refused_before_kiro(proxy: Proxy) -> None:
    foreign = ["https://attacker.example", "null", "http://localhost.attacker.example", "http://127.0.0.1.nip.io"]
    seen = {origin: chat(proxy, origin=origin).status_code for origin in foreign}
    anthropic_answer = message(proxy, origin="https://attacker.example")
    assert seen == {origin: 403 for origin in foreign}
    assert chat(proxy, origin="https://attacker.example").json()["error"]["code"] == "origin_not_allowed"
    assert anthropic_answer.status_code == 403
    assert anthropic_answer.json()["error"]["type"] == "permission_error"
    assert "access-control-allow-origin" not in anthropic_answer.headers
    assert proxy.kiro.fake.chat_requests() == []


def test_local_pages_apps_and_extensions_get_cors_answers(proxy: Proxy) -> None:
    allowed = [
        "http://localhost:3000",
        "http://127.0.0.1:5173",
        "http://[::1]:8080",
        "app://obsidian.md",
        "tauri://localhost",
        "vscode-webview://1a2b3c",
        "chrome-extension://abcdefghijklmnop",
        "moz-extension://0f1e2d3c",
        "file://",
    ]
    seen = {}
    for origin in allowed:
        answer = chat(proxy, origin=origin)
        seen[origin] = (answer.status_code, answer.headers.get("access-control-allow-origin"))
    assert seen == {origin: (200, origin) for origin in allowed}


def preflight(proxy: Proxy, origin: str, path: str = "/v1/chat/completions") -> httpx.Response:
    headers = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os",
        "access-control-request-private-network": "true",
    }
    return httpx.options(f"{proxy.url}{path}", headers=headers, timeout=10)


def test_preflight_is_answered_for_allowed_origins_only(proxy: Proxy) -> None:
    good = preflight(proxy, "http://localhost:3000")
    bad = preflight(proxy, "https://attacker.example", "/v1/messages")
    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in good.headers["access-control-allow-methods"]
    assert "authorization" in good.headers["access-control-allow-headers"].lower()
    assert good.headers["access-control-allow-private-network"] == "true"
    assert bad.status_code == 403
    assert bad.json()["type"] == "error"
    assert "access-control-allow-origin" not in bad.headers


def test_allowed_origins_setting_lets_a_web_client_in(proxy_with: Any) -> None:
    proxy = proxy_with(allowed_origins="https://*.chat.example, https://one.example")
    for origin in ("https://app.chat.example", "https://one.example"):
        assert preflight(proxy, origin).status_code == 200
        answer = chat(proxy, origin=origin)
        assert (answer.status_code, answer.headers.get("access-control-allow-origin")) == (200, origin)
    assert chat(proxy, origin="https://two.example").status_code == 403
    assert chat(proxy, origin="https://chat.example.attacker.example").status_code == 403


def test_status_page_says_how_to_allow_a_web_client(proxy: Proxy) -> None:
    page = httpx.get(proxy.url, timeout=10).text
    assert "KI2API_ALLOWED_ORIGINS=" in page


# Every route the app serves, with a body it would accept: the guard sits in front of all of them.
ROUTES = [
    ("GET", "/", None),
    ("GET", "/health", None),
    ("GET", "/v1/models", None),
    ("GET", "/api/usage", None),
    ("GET", "/api/requests?limit=5", None),
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/responses", {"model": MODEL, "input": "hi"}),
    ("POST", "/v1/messages", MESSAGE),
    ("POST", "/v1/messages/count_tokens", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_refuses_a_foreign_host_and_a_foreign_origin(
    proxy: Proxy, method: str, path: str, body: dict[str, Any] | None
) -> None:
    headers = {**KEY, **ANTHROPIC_KEY}
    rebound = httpx.request(
        method, f"{proxy.url}{path}", json=body, headers={**headers, "host": "attacker.example"}, timeout=30
    )
    foreign = httpx.request(
        method, f"{proxy.url}{path}", json=body, headers={**headers, "origin": "https://attacker.example"}, timeout=30
    )
    assert (rebound.status_code, foreign.status_code) == (403, 403)
    assert "access-control-allow-origin" not in foreign.headers
    assert proxy.kiro.fake.chat_requests() == []

"""Image URLs cannot be turned against the network ki2api runs in.

"Off loopback" is a setting here: the app is built with `host=0.0.0.0` and driven in-process, so no test
binds beyond loopback. Image hosts are loopback servers that count every request they see: a refused
download must not reach them at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from ki2api_tray.api.server import create_app
from ki2api_tray.config import load_settings
from ki2api_tray.core.errors import UnsupportedImage
from ki2api_tray.kiro import images
from ki2api_tray.kiro.image_transport import IPAddress, PinnedTransport, address_refusal
from ki2api_tray.kiro.images import ImageFetcher
from ki2api_tray.kiro.tokens import TokenStore
from ki2api_tray.service import StateReporter
from ki2api_tray.state import AppState
from tests.fixtures_kiro import KiroEnv
from tests.test_images_thinking import PNG, image_message

KEY = "a-long-custom-key-for-the-lan-0123"
MODEL = "claude-sonnet-4.5"


@dataclass
class CountingHost:
    """A loopback HTTP server: `routes` maps a path to (status, headers, body); `hits` counts requests."""

    address: str
    port: int = 0
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    body_written: dict[str, bool] = field(default_factory=dict)

    def url(self, path: str, name: str | None = None) -> str:
        return f"http://{name or self.address}:{self.port}{path}"


@contextlib.contextmanager
def counting_host(address: str = "127.0.0.1") -> Iterator[CountingHost]:
    host = CountingHost(address)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
            host.hits.append(self.path)
            status, headers, body = host.routes.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
                self.wfile.flush()
                host.body_written[self.path] = True
            except OSError:
                host.body_written[self.path] = False

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def image_host() -> Iterator[CountingHost]:
    with counting_host() as host:
        host.routes["/pic.png"] = (200, {"Content-Type": "image/png"}, PNG)
        yield host


@contextlib.asynccontextmanager
async def off_loopback_api(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """ki2api as configured for a LAN (host 0.0.0.0, a custom key), with its lifespan, driven in-process."""
    settings = load_settings({"host": "0.0.0.0", "api_key": KEY, **overrides})
    state = AppState()
    app = create_app(settings, TokenStore(settings), StateReporter(state), state.snapshot)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://ki2api.lan", headers=headers) as client:
            yield client


def ask_with_images(urls: list[str], **overrides: Any) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        async with off_loopback_api(**overrides) as client:
            return [
                await client.post("/v1/chat/completions", json={"model": MODEL, "messages": image_message(url)})
                for url in urls
            ]

    return asyncio.run(run())


def test_off_loopback_private_addresses_are_refused_unreached(
    kiro_env: KiroEnv, image_host: CountingHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "FETCH_TIMEOUT", 2.0)  # should the guard fail, the metadata address times out
    urls = {
        image_host.url("/pic.png"): "127.0.0.1 is a loopback address",
        image_host.url("/pic.png", name="localhost"): "localhost resolves to a loopback address",
        image_host.url("/pic.png", name="[::ffff:127.0.0.1]"): "a loopback address",
        "http://169.254.169.254/latest/meta-data/": "a link-local address",
        "http://10.0.0.1/cam.png": "a private network address",
        "http://100.64.0.1/x.png": "a carrier-grade NAT address",
        "http://0.0.0.0:80/x.png": "an unspecified address",
    }
    answers = ask_with_images(list(urls))
    messages = [answer.json()["error"]["message"] for answer in answers]
    seen = {url: (a.status_code, urls[url] in m) for url, a, m in zip(urls, answers, messages, strict=True)}
    assert seen == {url: (400, True) for url in urls}
    assert "KI2API_IMAGE_FETCH_PRIVATE=1" in messages[0]
    assert image_host.hits == []
    assert kiro_env.fake.chat_requests() == []


def test_private_downloads_can_be_allowed_off_loopback(kiro_env: KiroEnv, image_host: CountingHost) -> None:
    [answer] = ask_with_images([image_host.url("/pic.png", name="localhost")], image_fetch_private=True)
    assert answer.status_code == 200
    assert image_host.hits == ["/pic.png"]


# --- redirects, hop by hop: 127.0.0.1 plays a public host, 127.0.0.2 the private network ----------------------


def public_127_0_0_1(address: IPAddress) -> str | None:
    return None if address == ipaddress.ip_address("127.0.0.1") else address_refusal(address)


def fetch(url: str) -> Any:
    async def run() -> Any:
        fetcher = ImageFetcher(guard_private=True, transport=PinnedTransport(public_127_0_0_1))
        try:
            return await fetcher.fetch_image(url)
        except UnsupportedImage as error:
            return error
        finally:
            await fetcher.aclose()

    return asyncio.run(run())


@pytest.fixture
def public_and_private() -> Iterator[tuple[CountingHost, CountingHost]]:
    with counting_host("127.0.0.1") as public, counting_host("127.0.0.2") as private:
        private.routes["/pic.png"] = (200, {"Content-Type": "image/png"}, PNG)
        public.routes["/pic.png"] = (200, {"Content-Type": "image/png"}, PNG)
        yield public, private


def test_redirect_to_a_private_address_is_refused_unreached(public_and_private: tuple[CountingHost, ...]) -> None:
    public, private = public_and_private
    public.routes["/to-private"] = (302, {"Location": private.url("/pic.png")}, b"")
    public.routes["/to-public"] = (302, {"Location": "/pic.png"}, b"")
    refused = fetch(public.url("/to-private"))
    allowed = fetch(public.url("/to-public"))
    assert isinstance(refused, UnsupportedImage)
    assert "127.0.0.2 is a loopback address" in refused.message
    assert not isinstance(allowed, UnsupportedImage)
    assert private.hits == []
    assert public.hits == ["/to-private", "/to-public", "/pic.png"]


def test_at_most_three_redirects(public_and_private: tuple[CountingHost, ...]) -> None:
    public, _ = public_and_private
    for hop in range(1, 5):
        public.routes[f"/r{hop}"] = (302, {"Location": f"/r{hop + 1}" if hop < 4 else "/pic.png"}, b"")
    three = fetch(public.url("/r2"))
    four = fetch(public.url("/r1"))
    assert not isinstance(three, UnsupportedImage)
    assert isinstance(four, UnsupportedImage)
    assert "more than 3 redirects" in four.message
    assert "/pic.png" not in public.hits[4:]  # the fourth redirect was not followed


def test_bodies_of_non_images_are_not_read(public_and_private: tuple[CountingHost, ...]) -> None:
    public, _ = public_and_private
    big = b"x" * (64 * 1024 * 1024)  # far more than socket buffers hold: only a reader lets it all through
    public.routes["/redirect-with-body"] = (302, {"Location": "/pic.png", "Content-Type": "text/html"}, big)
    public.routes["/page"] = (200, {"Content-Type": "text/html"}, big)
    redirected = fetch(public.url("/redirect-with-body"))
    page = fetch(public.url("/page"))
    assert not isinstance(redirected, UnsupportedImage)
    assert isinstance(page, UnsupportedImage)
    assert "text/html" in page.message
    pause = threading.Event()
    for _ in range(200):  # the server notices the closed connection on its next write
        if {"/redirect-with-body", "/page"} <= set(public.body_written):
            break
        pause.wait(0.05)
    assert public.body_written == {"/redirect-with-body": False, "/pic.png": True, "/page": False}


def test_image_errors_show_urls_without_query_strings(kiro_env: KiroEnv, image_host: CountingHost) -> None:
    signed = image_host.url("/missing.png") + "?X-Amz-Signature=0123456789abcdef&X-Amz-Credential=AKIA"
    [answer] = ask_with_images([signed], image_fetch_private=True)
    message = answer.json()["error"]["message"]
    assert answer.status_code == 400
    assert "/missing.png" in message
    assert "Signature" not in message and "AKIA" not in message

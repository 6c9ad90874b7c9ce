"""What ki2api shows without the key, and how it judges keys: tried as someone who can reach the port would."""

from __future__ import annotations

import httpx

from ki2api_tray.app import exposure_refusal
from ki2api_tray.config import DEFAULT_API_KEY, load_settings
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4.5"
SIGNED = "http://127.0.0.1:9/private-photo.png?X-Amz-Signature=0123abcd&X-Amz-Credential=AKIAEXAMPLE"


def fail_with_image(proxy: Proxy) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": SIGNED}}]}]
    answer = httpx.post(
        f"{proxy.openai_base}/chat/completions",
        json={"model": MODEL, "messages": messages},
        headers={"authorization": f"Bearer {DEFAULT_API_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 400


def test_unauthenticated_routes_show_no_home_paths_or_request_text(proxy: Proxy) -> None:
    fail_with_image(proxy)
    home = str(proxy.kiro.home)
    public_health = httpx.get(f"{proxy.url}/health", timeout=10).text
    page = httpx.get(proxy.url, timeout=10).text
    keyed = httpx.get(f"{proxy.url}/health", headers={"x-api-key": DEFAULT_API_KEY}, timeout=10).json()
    for shown in (public_health, page):
        assert home not in shown
        assert "private-photo" not in shown
        assert "Signature" not in shown
    assert "private-photo.png" in keyed["last_error"]  # the key holder sees which image failed
    assert "Signature" not in keyed["last_error"]  # but never a query string
    assert keyed["token"]["source"] == str(proxy.kiro.token_file)


def test_openapi_schema_is_not_served(proxy: Proxy) -> None:
    anonymous = httpx.get(f"{proxy.url}/openapi.json", timeout=10)
    keyed = httpx.get(f"{proxy.url}/openapi.json", headers={"x-api-key": DEFAULT_API_KEY}, timeout=10)
    assert (anonymous.status_code, keyed.status_code) == (404, 404)


def test_either_key_header_that_matches_wins(proxy: Proxy) -> None:
    cases = {
        "wrong bearer, right x-api-key": {"authorization": "Bearer stale-key", "x-api-key": DEFAULT_API_KEY},
        "right bearer, wrong x-api-key": {"authorization": f"Bearer {DEFAULT_API_KEY}", "x-api-key": "stale-key"},
        "both wrong": {"authorization": "Bearer stale-key", "x-api-key": "other-stale-key"},
        "right key in x-api-key only": {"x-api-key": DEFAULT_API_KEY},
    }
    url = f"{proxy.openai_base}/models"
    seen = {name: httpx.get(url, headers=headers, timeout=10).status_code for name, headers in cases.items()}
    assert seen == {
        "wrong bearer, right x-api-key": 200,
        "right bearer, wrong x-api-key": 200,
        "both wrong": 401,
        "right key in x-api-key only": 200,
    }


def test_short_custom_key_is_refused_off_loopback() -> None:
    short = exposure_refusal(load_settings({"host": "0.0.0.0", "api_key": "hunter2-key"}))
    long_enough = exposure_refusal(load_settings({"host": "0.0.0.0", "api_key": "k" * 16}))
    on_loopback = exposure_refusal(load_settings({"host": "127.0.0.1", "api_key": "hunter2"}))
    assert "11 characters" in short and "at least 16" in short
    assert (long_enough, on_loopback) == ("", "")

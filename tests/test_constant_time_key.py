"""The API key is checked with `secrets.compare_digest` on every protected route, and never with `==`.

Timing is not measured (too noisy to prove anything); instead the comparison is recorded, and the source
is read to make sure no plain comparison of the key sits beside it.
"""

from __future__ import annotations

import ast
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import ki2api_tray
from tests.fixtures_kiro import KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

KEY = "sk-local-Xb93kLq0"
ROUTES = [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/messages")]
ROUTES += [("POST", "/v1/messages/count_tokens")]


@pytest.fixture
def keyed(kiro_env: KiroEnv) -> Iterator[Proxy]:
    runtime = start_proxy(kiro_env, api_key=KEY)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    finally:
        runtime.service.close()


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every compare_digest call made with our key on one side."""
    calls: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = secrets.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        if KEY.encode() in (a, b):
            calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(secrets, "compare_digest", recording)
    return calls


SENT = {
    "bearer-right": ({"Authorization": f"Bearer {KEY}"}, KEY, True),
    "x-api-key-right": ({"x-api-key": KEY}, KEY, True),
    "bearer-lowercase-scheme": ({"Authorization": f"bearer {KEY}"}, KEY, True),
    "wrong": ({"Authorization": "Bearer sk-local-Xb93kLq1"}, "sk-local-Xb93kLq1", False),
    "prefix": ({"x-api-key": KEY[:-1]}, KEY[:-1], False),
    "longer": ({"x-api-key": KEY + "0"}, KEY + "0", False),
    "missing": ({}, "", False),
    "non-ascii": ({"x-api-key": "sk-local-Xb93kLq\u00e9"}, "sk-local-Xb93kLq\u00e9", False),
}


@pytest.mark.parametrize(("headers", "sent", "accepted"), SENT.values(), ids=SENT.keys())
def test_key_check_uses_compare_digest(
    keyed: Proxy, comparisons: list[tuple[bytes, bytes]], headers: dict[str, str], sent: str, accepted: bool
) -> None:
    raw_headers = {name: value.encode("utf-8") for name, value in headers.items()}
    # Header bytes arrive as latin-1 text and are compared, re-encoded, against the key's UTF-8 bytes.
    compared = (sent.encode("utf-8").decode("latin-1").encode("utf-8"), KEY.encode())
    with httpx.Client(base_url=keyed.url, timeout=30) as client:
        for method, path in ROUTES:
            comparisons.clear()
            response = client.request(method, path, json=None if method == "GET" else {}, headers=raw_headers)

            assert (response.status_code != 401) is accepted, (path, response.text)
            assert comparisons == [compared], path
            if not accepted:
                assert response.json()["error"]["type"] == "authentication_error"
                assert sent == "" or sent not in response.text


def _plain_key_comparisons(source: str) -> list[int]:
    """Lines where something named like the key is compared with == / != / in."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            names = [n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "") for n in ast.walk(node)]
            if any(name in ("api_key", "expected_key", "sent") for name in names):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("module", ["api/server.py", "config.py", "app.py"])
def test_key_is_never_compared_with_equality(module: str) -> None:
    source = (Path(ki2api_tray.__file__).parent / module).read_text(encoding="utf-8")
    found = _plain_key_comparisons(source)
    # config.py may tell whether the key is still the public default: that is not a secret comparison.
    allowed = {"config.py": 1}.get(module, 0)
    assert len(found) <= allowed, f"{module} compares the key with == on lines {found}"

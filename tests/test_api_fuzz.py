"""Schemathesis fuzzes the live HTTP API from tests/openapi_ki2api.yaml, in front of the fake Kiro.

Schema-valid and schema-breaking requests alike must never get a 5xx; every 4xx is JSON in the error
shape of the API that was called; a 200 stream ends properly; and nothing a client sends makes ki2api
send Kiro a request the (strictly validating) fake refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from ki2api_tray.config import DEFAULT_API_KEY
from tests.fake_kiro import FakeKiro, write_token_file
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv
from tests.fixtures_proxy import Proxy, start_proxy

# Schemathesis stops reading an event stream after 20 events by default; ours end, so read them whole.
SCHEMA = schemathesis.openapi.from_path(
    str(Path(__file__).with_name("openapi_ki2api.yaml")),
    config=schemathesis.Config.from_dict({"max-stream-events": 100_000}),
)
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
]
# Enough to find shape bugs, few enough that the whole file runs in seconds.
EXAMPLES = {"GET": 5, "POST": 40}


@pytest.fixture(scope="module")
def server(fake_kiro_server: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """One server for the whole fuzz run; requests to anywhere but loopback go to a dead proxy."""
    fake = fake_kiro_server
    fake.reset()
    home = tmp_path_factory.mktemp("fuzz")
    account = fake.accounts.add_social()
    env = KiroEnv(fake, account, home, write_token_file(home, account))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("KI2API_HOME", str(home / "ki2api"))
        for variable in KIRO_URL_VARIABLES:
            patch.setenv(variable, fake.base_url)
        # A generated image URL must never make a test reach the internet.
        patch.setenv("ALL_PROXY", "http://127.0.0.1:9")
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        runtime = start_proxy(env)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", env)
    finally:
        runtime.service.close()
        fake.reset()


def check_response(path: str, status: int, content_type: str, body: bytes) -> None:
    assert status < 500, f"{status}: {body[:500]!r}"
    if status >= 400:
        error = json.loads(body)
        if path.startswith("/v1/messages"):
            assert error["type"] == "error", error
        assert isinstance(error["error"]["message"], str) and error["error"]["message"], error
        assert isinstance(error["error"]["type"], str), error
        return
    if content_type.startswith("text/event-stream"):
        data = [line[5:].strip() for line in body.decode("utf-8").split("\n") if line.startswith("data:")]
        events = [json.loads(d) for d in data if d != "[DONE]"]
        assert not [e for e in events if "error" in e and e.get("type") in (None, "error")], events[-1:]
        if path == "/v1/chat/completions":
            ended = data[-1] == "[DONE]"
        elif path == "/v1/responses":
            ended = events[-1]["type"] in ("response.completed", "response.incomplete")
        else:
            ended = events[-1]["type"] == "message_stop"
        assert ended, f"the stream did not end properly: {data[-3:]}"
        return
    assert isinstance(json.loads(body), dict)


# Schema-breaking cases exist only where there is a body to break.
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in ([GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if method == "POST" else [GenerationMode.POSITIVE])
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_api_fuzz_no_5xx_and_errors_in_api_shape(server: Proxy, method: str, path: str, mode: GenerationMode) -> None:
    operation = SCHEMA[path][method]
    fake = server.kiro.fake
    rejected_before = len(fake.rejections)

    @settings(
        max_examples=EXAMPLES[method],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        # Shrinking a failure through a live server can take minutes; the case is printed whole instead.
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode, headers=AUTH))
    def fuzz(case: Any) -> None:
        response = case.call(base_url=server.url, timeout=30)
        assert not response.stream_cut_short
        sent = f"{case.method} {case.path} body={case.body!r:.2000}"
        try:
            check_response(path, response.status_code, response.headers.get("content-type", [""])[0], response.content)
            assert fake.rejections[rejected_before:] == [], "ki2api sent Kiro a request it refuses"
        except AssertionError as failure:
            raise AssertionError(f"{failure}\nrequest: {sent}") from None

    fuzz()

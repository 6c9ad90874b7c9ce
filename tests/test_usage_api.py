"""`GET /api/usage` and `GET /api/requests` end to end: real SDK requests through ki2api to the fake Kiro."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import anthropic
import httpx
import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.usage.store import FILE_NAME
from tests.fake_kiro import ErrorReply, StreamReply, scenarios
from tests.fake_kiro.scenarios import TOO_LONG
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-20250514"
KEY = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
SECRET_WORDS = "purple-elephant-marmalade-42"


def get(proxy: Proxy, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(proxy.url + path, headers=KEY if headers is None else headers, timeout=10)


def settled(proxy: Proxy) -> None:
    usage = proxy.runtime.usage
    assert usage is not None and usage.flush()


def test_usage_and_requests_need_the_key(proxy: Proxy) -> None:
    for path in ("/api/usage", "/api/requests?limit=5"):
        missing = get(proxy, path, headers={})
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "invalid_api_key"
        wrong = get(proxy, path, headers={"x-api-key": "guess"})
        assert wrong.status_code == 401
        assert get(proxy, path, headers={"x-api-key": DEFAULT_API_KEY}).status_code == 200


def test_requests_are_counted_by_model_client_and_day(proxy: Proxy) -> None:
    proxy.kiro.fake.script(StreamReply(scenarios.text("Hello") + scenarios.usage(context_percentage=3.5, credits=0.12)))
    proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": SECRET_WORDS}])
    proxy.kiro.fake.script(ErrorReply(400, TOO_LONG))
    with pytest.raises(anthropic.BadRequestError):
        proxy.anthropic().messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    settled(proxy)

    body = get(proxy, "/api/usage").json()
    assert body["total"] == {
        "requests": 2,
        "errors": 1,
        "credits": 0.12,
        "input_tokens": body["total"]["input_tokens"],
        "output_tokens": body["total"]["output_tokens"],
    }
    assert body["total"]["input_tokens"] > 0 and body["total"]["output_tokens"] > 0
    assert body["by_model"]["claude-sonnet-4"]["requests"] == 2
    assert set(body["by_client"]) == {"OpenAI/Python", "Anthropic/Python"}
    assert body["by_client"]["Anthropic/Python"]["errors"] == 1
    assert len(body["by_day"]) == 30
    assert body["by_day"][-1]["date"] == date.today().isoformat()
    assert body["by_day"][-1]["requests"] == 2
    assert body["error_rate"] == 0.5
    assert body["ttfb_ms"]["p50"] is not None
    assert len(get(proxy, "/api/usage?days=7").json()["by_day"]) == 7

    newest, older = get(proxy, "/api/requests?limit=10").json()["requests"]
    assert (newest["api"], newest["status"], newest["ok"]) == ("anthropic", 400, False)
    assert newest["error_kind"] == "context_length_exceeded"
    assert "Input is too long" in newest["error"]  # Kiro's own words, for "why did Kiro say 400?"
    assert (older["api"], older["status"], older["client"]) == ("openai", 200, "OpenAI/Python")
    assert older["credits"] == 0.12 and older["context_percent"] == 3.5
    assert older["model"] == "claude-sonnet-4" and older["model_requested"] == MODEL
    assert older["login"] == "social"
    assert older["duration_ms"] >= older["ttfb_ms"] > 0
    assert older["time"] < newest["time"] or older["id"] < newest["id"]
    assert [r["id"] for r in get(proxy, "/api/requests?limit=1").json()["requests"]] == [newest["id"]]
    assert [r["api"] for r in get(proxy, "/api/requests?status=ok").json()["requests"]] == ["openai"]
    assert get(proxy, "/api/requests?client=curl").json()["requests"] == []


def test_each_api_is_named_in_the_request_log(proxy: Proxy) -> None:
    """The dashboard splits requests by API: chat completions, Messages and the Responses API (Codex)."""
    for _ in range(3):
        proxy.kiro.fake.script(StreamReply(scenarios.text("Hi")))
    proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "a"}])
    proxy.anthropic().messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "b"}])
    proxy.openai().responses.create(model=MODEL, input="c", store=False)
    settled(proxy)
    apis = [r["api"] for r in get(proxy, "/api/requests?limit=10").json()["requests"]]
    assert apis == ["responses", "anthropic", "openai"]

def test_the_store_never_holds_message_text_or_secrets(proxy: Proxy, tmp_path: Path) -> None:
    proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": SECRET_WORDS}])
    settled(proxy)
    folder = proxy.runtime.settings.app_paths.state_dir
    raw = b"".join(p.read_bytes() for p in folder.glob(FILE_NAME + "*"))
    assert raw, "the store wrote nothing"
    for secret in (SECRET_WORDS, DEFAULT_API_KEY, proxy.kiro.account.access_token, proxy.kiro.account.refresh_token):
        assert secret.encode() not in raw


def test_what_ki2api_changed_is_recorded_per_request(proxy: Proxy) -> None:
    long_name = "mcp__a_very_long_server_name__with_a_very_long_tool_name_that_kiro_cannot_take_as_is"
    tool = {"type": "function", "function": {"name": long_name, "parameters": {"type": "object"}}}
    proxy.openai().chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
        ],
        tools=[tool],
        temperature=0.2,
    )
    settled(proxy)
    (row,) = get(proxy, "/api/requests").json()["requests"]
    kinds = {change["kind"]: change["detail"] for change in row["changes"]}
    assert kinds["history_merged"] == "2 -> 1"
    assert "system_in_first_message" in kinds
    assert kinds["tool_renamed"].startswith(long_name + " -> ")
    assert kinds["model_substituted"].startswith("gpt-4o -> ")
    assert kinds["field_removed"] == "temperature"  # Kiro has no sampling settings


@pytest.mark.parametrize(
    "query",
    [
        "/api/requests?limit=0",
        "/api/requests?limit=many",
        "/api/requests?limit=501",
        "/api/usage?days=91",
        "/api/requests?status=maybe",
    ],
)
def test_bad_query_parameters_are_a_clear_400(proxy: Proxy, query: str) -> None:
    response = get(proxy, query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] in ("limit", "days", "status")


def test_usage_shows_the_quota_and_a_forecast_once_kiro_reported_it(proxy: Proxy) -> None:
    from ki2api_tray.state import Quota

    proxy.runtime.service.reporter.quota_changed(Quota("KIRO PRO", used=100, limit=1000))
    proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    settled(proxy)
    body = get(proxy, "/api/usage").json()
    # The meteringEvent's credits count against the plan until Kiro's next figure arrives.
    assert body["quota"]["used"] == pytest.approx(100.12)
    assert body["forecast"]["pace_per_day"] == pytest.approx(0.12 / 7, abs=1e-4)
    assert body["forecast"]["runs_out"] is not None

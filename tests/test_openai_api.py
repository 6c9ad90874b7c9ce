"""The OpenAI-compatible API end to end: the official SDK -> ki2api -> the strict fake Kiro."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time

import httpx
import openai
import pytest

from tests.fake_kiro import CHAT_PATH, StreamReply, scenarios, token_file_json, write_token_file
from tests.fake_kiro.scenarios import HIGH_TRAFFIC
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-20250514"


def ask(proxy: Proxy, text: str, **kwargs: object) -> str:
    reply = proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], **kwargs)
    return reply.choices[0].message.content or ""


def test_chat_non_stream_returns_kiro_text_and_usage(proxy: Proxy) -> None:
    proxy.kiro.fake.script(StreamReply(scenarios.text("Hello", " from ", "Kiro 你好 🎉") + scenarios.usage()))

    reply = proxy.openai().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])

    assert reply.choices[0].message.content == "Hello from Kiro 你好 🎉"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "claude-sonnet-4"  # the Kiro model that answered, not the spelling sent
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    sent = proxy.kiro.fake.chat_requests()[-1]
    assert sent.json["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] == "claude-sonnet-4"
    assert sent.json["profileArn"] == proxy.kiro.account.profile_arn


def test_chat_stream_delivers_exact_text_then_done(proxy: Proxy) -> None:
    chunks = ["Stre", "am", "ing ", "wörks", " ✓"]
    proxy.kiro.fake.script(StreamReply(scenarios.text(*chunks) + scenarios.usage()))

    stream = proxy.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    deltas, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            deltas.append(choice.delta.content or "")
            finish = choice.finish_reason or finish

    assert "".join(deltas) == "".join(chunks)
    assert finish == "stop"
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_stream_ends_with_done_line(proxy: Proxy) -> None:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": "Bearer ki2api-key-2024"}

    response = httpx.post(f"{proxy.openai_base}/chat/completions", json=body, headers=headers, timeout=10)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line.strip()]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0].removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"


def test_chat_stream_forwards_first_token_before_kiro_finishes(proxy: Proxy) -> None:
    # Kiro stalls for 20 s after its first frame; a proxy that buffered would make this read time out.
    proxy.kiro.fake.script(StreamReply(scenarios.text("first", " rest"), pause=(1, 20.0)))
    client = proxy.openai(timeout=httpx.Timeout(5.0))

    with client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    ) as stream:
        first_text = ""
        for chunk in stream:
            first_text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            if first_text:
                break

    assert first_text == "first"


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_chat_accepts_key_in_either_header(proxy: Proxy, header: str) -> None:
    value = "Bearer ki2api-key-2024" if header == "authorization" else "ki2api-key-2024"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "key check"}]}

    response = httpx.post(f"{proxy.openai_base}/chat/completions", json=body, headers={header: value}, timeout=10)

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Echo: key check"


def test_chat_with_wrong_key_is_openai_401(proxy: Proxy) -> None:
    client = openai.OpenAI(base_url=proxy.openai_base, api_key="not-the-key", max_retries=0)

    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])

    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "authentication_error"  # type: ignore[index]
    assert "API key" in caught.value.body["message"]  # type: ignore[index]
    assert proxy.kiro.fake.chat_requests() == []


def test_chat_multi_turn_history_is_shaped_for_kiro(proxy: Proxy) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": "three"},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "four"},
    ]

    reply = proxy.openai().chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]

    assert reply.choices[0].message.content == "Echo: four"
    state = proxy.kiro.fake.chat_requests()[-1].json["conversationState"]
    roles = [next(iter(turn)) for turn in state["history"]]
    assert roles == ["userInputMessage", "assistantResponseMessage"]
    first_user = state["history"][0]["userInputMessage"]["content"]
    assert "You are terse." in first_user and "one" in first_user and "two" in first_user
    assert state["history"][1]["assistantResponseMessage"]["content"] == "three"


def test_chat_many_concurrent_streams_each_get_their_own_answer(proxy: Proxy) -> None:
    client = proxy.async_openai()

    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"request number {i}"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def main() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(24)))

    answers = asyncio.run(main())

    assert answers == [f"Echo: request number {i}" for i in range(24)]


def test_expired_token_is_refreshed_and_written_back(proxy: Proxy) -> None:
    kiro = proxy.kiro
    data = token_file_json(kiro.account, expires_in=-60)
    data["someKiroField"] = {"kept": True}
    kiro.token_file.write_text(json.dumps(data, indent=2))
    os.chmod(kiro.token_file, 0o600)
    proxy.runtime.service.reload_token()  # what the file watcher does within a second
    old_refresh = kiro.account.refresh_token

    assert ask(proxy, "after expiry") == "Echo: after expiry"

    assert kiro.fake.refresh_count == 1
    on_disk = json.loads(kiro.token_file.read_text())
    assert on_disk["refreshToken"] == kiro.account.refresh_token != old_refresh
    assert on_disk["accessToken"] == kiro.account.access_token
    assert on_disk["someKiroField"] == {"kept": True}
    assert on_disk["expiresAt"].endswith("Z") and "." in on_disk["expiresAt"]
    assert oct(kiro.token_file.stat().st_mode & 0o777) == oct(0o600)
    assert [p.name for p in kiro.token_file.parent.iterdir()] == [kiro.token_file.name]


def test_concurrent_requests_on_expired_token_refresh_once(proxy: Proxy) -> None:
    write_token_file(proxy.kiro.home, proxy.kiro.account, expires_in=-60)
    proxy.runtime.service.reload_token()  # what the file watcher does within a second
    client = proxy.async_openai()

    async def main() -> list[str]:
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"n{i}"}])
                for i in range(30)
            )
        )
        return [r.choices[0].message.content or "" for r in replies]

    assert asyncio.run(main()) == [f"Echo: n{i}" for i in range(30)]
    assert proxy.kiro.fake.refresh_count == 1


def test_bearer_rejection_refreshes_once_and_retries(proxy: Proxy) -> None:
    # Kiro revoked the access token before its expiry time: only the 403 tells us.
    proxy.kiro.fake.accounts.expire_access_tokens(proxy.kiro.account)

    assert ask(proxy, "after revocation") == "Echo: after revocation"
    assert proxy.kiro.fake.refresh_count == 1


def test_token_file_rewritten_between_requests_is_used(proxy: Proxy) -> None:
    fake = proxy.kiro.fake
    assert ask(proxy, "first account") == "Echo: first account"
    second = fake.accounts.add_social()

    write_token_file(proxy.kiro.home, second)
    deadline = time.monotonic() + 5
    sent = ""
    while time.monotonic() < deadline:
        ask(proxy, "which account")
        sent = fake.chat_requests()[-1].headers["authorization"]
        if sent == f"Bearer {second.access_token}":
            break
        time.sleep(0.1)

    assert sent == f"Bearer {second.access_token}"
    assert fake.chat_requests()[-1].json["profileArn"] == second.profile_arn


def test_kiro_429_is_retried_then_succeeds(proxy: Proxy) -> None:
    proxy.kiro.fake.fail_next(CHAT_PATH, 429, HIGH_TRAFFIC)

    assert ask(proxy, "busy then fine") == "Echo: busy then fine"
    assert len(proxy.kiro.fake.chat_requests()) == 2


def test_kiro_429_every_time_gives_rate_limit_error(proxy: Proxy) -> None:
    proxy.kiro.fake.fail_next(CHAT_PATH, 429, HIGH_TRAFFIC, times=10)

    with pytest.raises(openai.RateLimitError) as caught:
        ask(proxy, "busy")

    assert "high traffic" in caught.value.message


@pytest.mark.parametrize(
    ("marker", "status", "code", "words"),
    [
        ("[[fake:error:402]]", 402, "insufficient_quota", "quota"),
        ("[[fake:error:400]]", 400, "kiro_rejected_request", "Improperly formed"),
        ("[[fake:exception:ContentLengthExceededException]]", 200, None, None),
    ],
)
def test_kiro_errors_reach_the_client_as_openai_errors(
    proxy: Proxy, marker: str, status: int, code: str | None, words: str | None
) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"x {marker}"}]}
    response = httpx.post(
        f"{proxy.openai_base}/chat/completions", json=body, headers={"x-api-key": "ki2api-key-2024"}, timeout=10
    )

    assert response.status_code == status
    if code:
        assert response.json()["error"]["code"] == code
        assert words in response.json()["error"]["message"]
    else:  # overflow after text was sent: the answer ends as cut off
        assert response.json()["choices"][0]["finish_reason"] == "length"


def test_context_overflow_is_context_length_exceeded(proxy: Proxy) -> None:
    proxy.kiro.fake.limits = dataclasses.replace(proxy.kiro.fake.limits, context_chars=100)

    with pytest.raises(openai.BadRequestError) as caught:
        ask(proxy, "x" * 500)

    assert caught.value.code == "context_length_exceeded"
    assert "too long" in caught.value.message


def test_refresh_token_rejected_tells_user_to_log_in(proxy: Proxy) -> None:
    data = token_file_json(proxy.kiro.account, expires_in=-60)
    data["refreshToken"] = "aor-revoked"
    proxy.kiro.token_file.write_text(json.dumps(data))
    proxy.runtime.tokens.reload()

    # design.md §3: a Kiro login that cannot be renewed is 403 kiro_login_required (the caller's key was fine).
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(proxy, "hi")

    assert "log in to Kiro" in caught.value.message
    assert caught.value.code == "kiro_login_required"
    assert proxy.runtime.state.snapshot().token.health.value == "refresh_failed"


def test_models_lists_seed_model_and_kiro_models(proxy: Proxy) -> None:
    ids = [m.id for m in proxy.openai().models.list()]

    assert ids[0] == MODEL
    assert {"claude-sonnet-4.5", "claude-haiku-4.5", "claude-sonnet-4-5"} <= set(ids)


def test_health_needs_no_key_and_shows_no_secrets(proxy: Proxy) -> None:
    ask(proxy, "count me")

    response = httpx.get(f"{proxy.url}/health", timeout=5)

    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "running"
    assert health["token"]["health"] == "valid"
    assert health["requests"]["today"] == 1
    text = response.text
    account = proxy.kiro.account
    assert account.access_token not in text and account.refresh_token not in text
    assert "ki2api-key-2024" not in text


# --- the seed README's curl bodies, verbatim -------------------------------------------------------------

SEED_HEADERS = {"Authorization": "Bearer ki2api-key-2024", "Content-Type": "application/json"}
SEED_NON_STREAM = """{
    "model": "claude-sonnet-4-5-20250929",
    "messages": [
      {"role": "user", "content": "你好，请介绍一下自己"}
    ],
    "max_tokens": 1000
  }"""
SEED_STREAM = """{
    "model": "claude-sonnet-4-5-20250929",
    "messages": [
      {"role": "user", "content": "写一首关于春天的诗"}
    ],
    "stream": true,
    "max_tokens": 500
  }"""


def test_seed_readme_models_curl(proxy: Proxy) -> None:
    response = httpx.get(f"{proxy.openai_base}/models", headers={"Authorization": "Bearer ki2api-key-2024"})

    assert response.status_code == 200
    assert response.json()["object"] == "list"


def test_seed_readme_non_stream_curl(proxy: Proxy) -> None:
    response = httpx.post(f"{proxy.openai_base}/chat/completions", content=SEED_NON_STREAM, headers=SEED_HEADERS)

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Echo: 你好，请介绍一下自己"
    sent = proxy.kiro.fake.chat_requests()[-1].json
    assert sent["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] == "claude-sonnet-4.5"


def test_seed_readme_stream_curl(proxy: Proxy) -> None:
    response = httpx.post(f"{proxy.openai_base}/chat/completions", content=SEED_STREAM, headers=SEED_HEADERS)

    lines = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    text = "".join(
        json.loads(line)["choices"][0]["delta"].get("content") or ""
        for line in lines[:-1]
        if json.loads(line)["choices"]
    )
    assert text == "Echo: 写一首关于春天的诗"


# --- bad input: a 4xx in OpenAI's shape, never a 5xx --------------------------------------------------------

BAD_BODIES = [
    ("not json", "{not json"),
    ("json array", "[1, 2]"),
    ("missing messages", json.dumps({"model": MODEL})),
    ("empty messages", json.dumps({"model": MODEL, "messages": []})),
    ("messages not a list", json.dumps({"model": MODEL, "messages": "hi"})),
    ("message not an object", json.dumps({"model": MODEL, "messages": ["hi"]})),
    ("unknown role", json.dumps({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]})),
    ("content a number", json.dumps({"model": MODEL, "messages": [{"role": "user", "content": 42}]})),
    ("missing model", json.dumps({"messages": [{"role": "user", "content": "hi"}]})),
    ("model a number", json.dumps({"model": 4, "messages": [{"role": "user", "content": "hi"}]})),
    ("stream a string", json.dumps({"model": MODEL, "stream": "yes", "messages": [{"role": "user", "content": "x"}]})),
    ("tools not a list", json.dumps({"model": MODEL, "tools": {}, "messages": [{"role": "user", "content": "x"}]})),
    ("deeply nested", '{"model": "m", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ("empty body", ""),
]


@pytest.mark.parametrize(("name", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_clear_4xx(proxy: Proxy, name: str, body: str) -> None:
    response = httpx.post(
        f"{proxy.openai_base}/chat/completions",
        content=body,
        headers={"Authorization": "Bearer ki2api-key-2024", "Content-Type": "application/json"},
        timeout=10,
    )

    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] and "Traceback" not in error["message"]
    assert proxy.kiro.fake.chat_requests() == []


def test_unknown_route_is_openai_shaped_404(proxy: Proxy) -> None:
    response = httpx.get(f"{proxy.openai_base}/nope", headers={"Authorization": "Bearer ki2api-key-2024"})

    assert response.status_code == 404
    assert "error" in response.json()


def test_server_restart_keeps_answering(proxy: Proxy) -> None:
    service = proxy.runtime.service
    address = proxy.runtime.state.snapshot().address
    assert ask(proxy, "before") == "Echo: before"

    service.stop()
    assert proxy.runtime.state.snapshot().phase.value == "stopped"
    assert service.start()

    restarted = proxy.runtime.state.snapshot().address
    assert restarted and restarted.split(":")[0] == address.split(":")[0]
    client = openai.OpenAI(base_url=f"http://{restarted}/v1", api_key="ki2api-key-2024", max_retries=0)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "after"}])
    assert reply.choices[0].message.content == "Echo: after"

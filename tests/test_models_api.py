"""Models and accounting end to end: model listing and name resolution, fallback to a model Kiro still
offers, usage numbers from Kiro's events, and context overflow answered so clients compact instead of looping.
"""

from __future__ import annotations

import logging
from typing import Any

import anthropic
import openai
import pytest

from ki2api_tray.kiro import upstream
from tests.fake_kiro import MODEL_IDS, TOO_LONG, ErrorReply, StreamReply, scenarios
from tests.fixtures_proxy import Proxy, start_proxy


def received(proxy: Proxy) -> dict[str, Any]:
    body = proxy.kiro.fake.chat_requests()[-1].json
    assert isinstance(body, dict)
    return body


def sent_model(proxy: Proxy) -> str:
    return str(received(proxy)["conversationState"]["currentMessage"]["userInputMessage"]["modelId"])


def ask(proxy: Proxy, model: str, text: str = "hi", **kwargs: Any) -> Any:
    return proxy.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kwargs)


# --- listing ----------------------------------------------------------------------------------------


def test_models_list_falls_back_then_asks_kiro_again(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    # A failed lookup must not pin the built-in list for an hour (found by the fault tests).
    monkeypatch.setattr(upstream, "MODEL_LIST_RETRY", 0.0)
    proxy.kiro.fake.fail_next("/ListAvailableModels", 500, {"message": "down", "reason": None})
    lookups = lambda: [r for r in proxy.kiro.fake.requests if r.path == "/ListAvailableModels"]  # noqa: E731

    fallback = [model.id for model in proxy.openai().models.list()]
    after = [model.id for model in proxy.openai().models.list()]

    assert "claude-sonnet-4-20250514" in fallback  # the built-in list still answers
    assert len(lookups()) >= 2 and MODEL_IDS <= set(after)


def test_models_list_openai_has_kiro_ids_and_dashed_aliases(proxy: Proxy) -> None:
    ids = [model.id for model in proxy.openai().models.list()]
    assert MODEL_IDS <= set(ids)
    assert {"claude-sonnet-4-5", "claude-opus-4-6", "claude-sonnet-4-20250514"} <= set(ids)
    assert len(ids) == len(set(ids))


def test_models_list_anthropic_shape(proxy: Proxy) -> None:
    page = proxy.anthropic().models.list()
    ids = [model.id for model in page.data]
    assert MODEL_IDS <= set(ids)
    assert all(model.type == "model" for model in page.data)


# --- resolution ---------------------------------------------------------------------------------------


RESOLVED = {
    "claude-sonnet-4.5": "claude-sonnet-4.5",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4.5",
    "claude-sonnet-4-20250514": "claude-sonnet-4",
    "claude-haiku-4-5-20251001": "claude-haiku-4.5",
    "claude-opus-4-6": "claude-opus-4.6",
    "CLAUDE_SONNET_4_5_20250929_V1_0": "claude-sonnet-4.5",
    "anthropic/claude-opus-4.5": "claude-opus-4.5",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0": "claude-sonnet-4.5",
    "auto-kiro": "auto",
}
# Names of models the fake Kiro does not offer, and the nearest one it does.
FALLBACKS = {
    "claude-opus-4-8": "claude-opus-4.6",
    "claude-sonnet-4-7-20260101": "claude-sonnet-4.6",
    "claude-3-7-sonnet-latest": "claude-sonnet-4",
    "gpt-4o": "auto",
}


def test_model_names_resolve(proxy: Proxy) -> None:
    seen = {}
    for requested in RESOLVED:
        reply = ask(proxy, requested)
        # Honest names: the answer names the Kiro model that served it, whatever spelling was sent.
        seen[requested] = (sent_model(proxy), reply.model)
    assert seen == {requested: (kiro_id, kiro_id) for requested, kiro_id in RESOLVED.items()}


def test_model_thinking_suffix_resolves_and_enables_thinking(proxy: Proxy) -> None:
    for requested, kiro_id in [
        ("claude-sonnet-4-5-thinking", "claude-sonnet-4.5"),
        ("claude-opus-4.5-thinking", "claude-opus-4.5"),
    ]:
        ask(proxy, requested)
        assert sent_model(proxy) == kiro_id
        content = received(proxy)["conversationState"]["currentMessage"]["userInputMessage"]["content"]
        assert content.startswith("<thinking_mode>enabled</thinking_mode>"), requested


def test_model_not_offered_falls_back_with_log_line(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    seen = {}
    for requested in FALLBACKS:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ki2api_tray"):
            reply = ask(proxy, requested)
        assert reply.choices[0].message.content == "Echo: hi"
        assert reply.model == sent_model(proxy), "the answer must say which model really answered"
        logged = [r.getMessage() for r in caplog.records if requested in r.getMessage()]
        seen[requested] = (sent_model(proxy), any(sent_model(proxy) in line for line in logged))
    assert seen == {requested: (kiro_id, True) for requested, kiro_id in FALLBACKS.items()}


def test_model_anthropic_dated_name(proxy: Proxy) -> None:
    message = proxy.anthropic().messages.create(
        model="claude-opus-4-6", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert sent_model(proxy) == "claude-opus-4.6"
    assert message.model == "claude-opus-4.6"


def test_model_of_a_family_kiro_does_not_offer_is_model_not_found(proxy: Proxy) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        ask(proxy, "claude-fable-5")
    assert caught.value.code == "model_not_found"
    assert "claude-opus-4.6" in caught.value.message and "claude-sonnet-4.5" in caught.value.message
    with pytest.raises(anthropic.NotFoundError) as refused:
        proxy.anthropic().messages.create(
            model="claude-fable-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert "not offered" in refused.value.message
    assert proxy.kiro.fake.chat_requests() == []


def test_strict_fallback_and_default_model_settings(kiro_env: Any) -> None:
    runtime = start_proxy(kiro_env, model_fallback="strict", default_model="claude-haiku-4-5")
    try:
        client = Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env).openai()
        with pytest.raises(openai.NotFoundError, match="KI2API_MODEL_FALLBACK=strict"):
            client.chat.completions.create(model="claude-opus-4-8", messages=[{"role": "user", "content": "hi"}])
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert reply.model == "claude-haiku-4.5"
    finally:
        runtime.service.close()


def test_models_list_carries_context_length(proxy: Proxy) -> None:
    listed = {m["id"]: m for m in proxy.openai().models.list().model_dump()["data"]}
    assert listed["claude-sonnet-4.6"]["context_length"] == 1_000_000
    assert listed["claude-sonnet-4-6"]["kiro_model"] == "claude-sonnet-4.6"
    assert listed["auto-kiro"]["kiro_model"] == "auto"
    page = proxy.anthropic().models.list()
    by_id = {m.id: m for m in page.data}
    assert by_id["claude-opus-4-6"].max_input_tokens == 1_000_000 and by_id["claude-haiku-4.5"].max_tokens == 8192
    for model_id in by_id:  # every listed id is accepted as it is
        ask(proxy, model_id)


# --- usage --------------------------------------------------------------------------------------------


def test_usage_from_context_usage_event(proxy: Proxy) -> None:
    # The fake reports 1.5% context usage; the window is the model's live tokenLimits.maxInputTokens.
    for model, prompt_tokens in [("claude-sonnet-4.5", 3_000), ("claude-sonnet-4.6", 15_000)]:
        usage = ask(proxy, model).usage
        assert usage.prompt_tokens == prompt_tokens, model
        assert usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_usage_exact_from_metadata_event(proxy: Proxy) -> None:
    events = [*scenarios.text("Exactly."), *scenarios.usage(), *scenarios.token_usage(1_234, 56)]
    proxy.kiro.fake.script(StreamReply(events), StreamReply(events), StreamReply(events))

    whole = ask(proxy, "claude-sonnet-4.5").usage
    stream = ask(proxy, "claude-sonnet-4.5", stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    message = proxy.anthropic().messages.create(
        model="claude-sonnet-4.5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )

    assert (whole.prompt_tokens, whole.completion_tokens, whole.total_tokens) == (1_234, 56, 1_290)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (1_234, 56)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert (message.usage.input_tokens, message.usage.output_tokens) == (1_234, 56)


def test_usage_estimated_when_kiro_reports_nothing(proxy: Proxy) -> None:
    proxy.kiro.fake.script(StreamReply(scenarios.text("No accounting here, just an answer.")))
    usage = ask(proxy, "claude-sonnet-4.5", "a question of some length for the estimate").usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0


def test_usage_chunk_only_when_asked(proxy: Proxy) -> None:
    chunks = list(ask(proxy, "claude-sonnet-4.5", stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


# --- context overflow ---------------------------------------------------------------------------------


def test_context_overflow_is_context_length_error(proxy: Proxy) -> None:
    overflows = {
        "http-400": ErrorReply(400, TOO_LONG),
        "stream-exception": StreamReply(scenarios.exception(scenarios.CONTENT_LENGTH_EXCEEDED)),
    }
    seen = {}
    for (name, reply), stream in [(item, stream) for item in overflows.items() for stream in (False, True)]:
        proxy.kiro.fake.script(reply)
        try:
            result = ask(proxy, "claude-sonnet-4.5", stream=stream)
            if stream:
                list(result)
        except openai.BadRequestError as error:
            seen[name, stream] = (error.code, error.type, "too long" in error.message)
    # Agents compact the conversation on this code instead of retrying the same request.
    expected = ("context_length_exceeded", "invalid_request_error", True)
    assert seen == {(name, stream): expected for name in overflows for stream in (False, True)}


def test_context_overflow_after_partial_answer_finishes_with_length(proxy: Proxy) -> None:
    proxy.kiro.fake.script(
        StreamReply(
            [*scenarios.text("Part of the ans", "wer"), *scenarios.exception(scenarios.CONTENT_LENGTH_EXCEEDED)]
        )
    )
    choice = ask(proxy, "claude-sonnet-4.5").choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Part of the answer", "length")


def test_context_overflow_body_over_kiro_limit_never_sent(proxy: Proxy) -> None:
    # ~700 KB: under ki2api's own body limit, over the ~615 KB Kiro rejects as "Improperly formed".
    huge = "lorem ipsum dolor sit amet " * 26_000
    with pytest.raises(openai.BadRequestError) as caught:
        ask(proxy, "claude-sonnet-4.5", huge)
    assert caught.value.code == "context_length_exceeded"
    assert proxy.kiro.fake.chat_requests() == []

    with pytest.raises(anthropic.BadRequestError) as anthropic_caught:
        proxy.anthropic().messages.create(
            model="claude-sonnet-4.5", max_tokens=32, messages=[{"role": "user", "content": huge}]
        )
    assert anthropic_caught.value.body["error"]["message"].startswith("prompt is too long")  # type: ignore[index]

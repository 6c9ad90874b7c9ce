"""Stop strings and output limits through the official SDKs: ki2api enforces what Kiro cannot."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fake_kiro import StreamReply, scenarios
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-20250514"
# "Echo: hello world" as Kiro might cut it: the stop string "lo wo" spans the second and third events.
HELLO = ["Echo: hel", "lo w", "orld", ", and more after it."]
TAIL_PAUSE = 30.0  # Kiro stalls after the match; an answer that waited for the rest would time out


def wait_until(condition: Callable[[], bool], deadline: float = 5.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def script_hello(proxy: Proxy) -> None:
    events = scenarios.text(*HELLO) + scenarios.text(" and a tail") + scenarios.usage()
    proxy.kiro.fake.script(StreamReply(events, pause=(len(HELLO), TAIL_PAUSE)))


def openai_answer(proxy: Proxy, stream: bool, **kwargs: Any) -> tuple[str, str | None, Any]:
    client = proxy.openai(timeout=10.0)
    messages = [{"role": "user", "content": "say hello world"}]
    if not stream:
        reply = client.chat.completions.create(model=MODEL, messages=messages, **kwargs)
        return reply.choices[0].message.content or "", reply.choices[0].finish_reason, reply.usage
    text, finish, usage = "", None, None
    chunks = client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}, **kwargs
    )
    for chunk in chunks:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, finish, usage


def anthropic_answer(proxy: Proxy, stream: bool, **kwargs: Any) -> Any:
    client = proxy.anthropic(timeout=10.0)
    kwargs.setdefault("max_tokens", 1024)
    messages = [{"role": "user", "content": "say hello world"}]
    if not stream:
        return client.messages.create(model=MODEL, messages=messages, **kwargs)
    with client.messages.stream(model=MODEL, messages=messages, **kwargs) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_openai_stop_ends_the_answer_before_a_split_match_and_closes_kiro(proxy: Proxy, stream: bool) -> None:
    script_hello(proxy)

    text, finish, _ = openai_answer(proxy, stream, stop=["xyz", "lo wo"])

    assert text == "Echo: hel"
    assert finish == "stop"
    assert wait_until(lambda: proxy.kiro.fake.aborted_streams == 1)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_anthropic_stop_sequence_is_reported(proxy: Proxy, stream: bool) -> None:
    script_hello(proxy)

    message = anthropic_answer(proxy, stream, stop_sequences=["lo wo"])

    assert [block.text for block in message.content] == ["Echo: hel"]
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "lo wo"
    assert wait_until(lambda: proxy.kiro.fake.aborted_streams == 1)


def test_openai_single_string_stop_from_the_issue(proxy: Proxy) -> None:
    # The default echo arrives as 8-character deltas: "Echo: sa", "y hello ", "world".
    text, finish, _ = openai_answer(proxy, False, stop="o w")
    assert (text, finish) == ("Echo: say hell", "stop")


def test_stop_that_never_matches_changes_nothing(proxy: Proxy) -> None:
    proxy.kiro.fake.script(StreamReply(scenarios.text(*HELLO) + scenarios.usage()))
    text, finish, _ = openai_answer(proxy, True, stop=["zzz"])
    assert (text, finish) == ("".join(HELLO), "stop")
    assert proxy.kiro.fake.aborted_streams == 0


def test_more_than_four_stop_strings_is_a_400(proxy: Proxy) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        openai_answer(proxy, False, stop=["a", "b", "c", "d", "e"])
    assert "at most 4" in str(caught.value)


def long_reply(proxy: Proxy) -> None:
    words = [f"word{i} " for i in range(400)]
    proxy.kiro.fake.script(
        StreamReply(
            scenarios.text(*words[:20]) + scenarios.text(*words[20:]) + scenarios.usage(), pause=(20, TAIL_PAUSE)
        )
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_openai_max_tokens_cuts_the_answer_with_length(proxy: Proxy, stream: bool, field: str) -> None:
    long_reply(proxy)

    text, finish, usage = openai_answer(proxy, stream, **{field: 8})

    assert finish == "length"
    assert text.startswith("word0") and len(text) < len("word0 word1 word2 word3 word4 ")
    assert usage is not None and 0 < usage.completion_tokens <= 8
    assert wait_until(lambda: proxy.kiro.fake.aborted_streams == 1)


def test_openai_max_tokens_two_from_the_issue(proxy: Proxy) -> None:
    text, finish, usage = openai_answer(proxy, False, max_tokens=2)
    assert finish == "length"
    assert 0 < len(text) < len("Echo: say hello world")
    assert usage.completion_tokens <= 2


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_anthropic_max_tokens_reports_max_tokens(proxy: Proxy, stream: bool) -> None:
    long_reply(proxy)

    message = anthropic_answer(proxy, stream, max_tokens=8)

    assert message.stop_reason == "max_tokens"
    assert message.content[0].text.startswith("word0")
    assert 0 < message.usage.output_tokens <= 8


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_tool_call_crossing_the_limit_is_dropped_whole(proxy: Proxy, stream: bool) -> None:
    arguments = '{"path": "a.txt", "content": "' + "x" * 3000 + '"}'
    proxy.kiro.fake.script(
        StreamReply(scenarios.text("Writing.") + scenarios.tool_call("write_file", arguments, 6) + scenarios.usage())
    )
    tools = [{"type": "function", "function": {"name": "write_file", "parameters": {"type": "object"}}}]
    client = proxy.openai(timeout=10.0)
    messages = [{"role": "user", "content": "write it"}]

    if stream:
        chunks = list(
            client.chat.completions.create(model=MODEL, messages=messages, tools=tools, max_tokens=100, stream=True)
        )
        calls = [c for chunk in chunks for choice in chunk.choices for c in choice.delta.tool_calls or []]
        text = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
        finish = [choice.finish_reason for chunk in chunks for choice in chunk.choices if choice.finish_reason]
    else:
        reply = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, max_tokens=100)
        calls = reply.choices[0].message.tool_calls or []
        text = reply.choices[0].message.content or ""
        finish = [reply.choices[0].finish_reason]

    assert calls == []
    assert text.startswith("Writing.") and "`write_file` was cut off by the max_tokens limit" in text
    assert finish == ["length"]

"""The fake Kiro itself: driven with httpx over loopback, decoded with botocore's own event-stream parser."""

from __future__ import annotations

import copy
import json
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from ki2api_tray import paths
from tests.fake_kiro import (
    BAD_BEARER,
    BODY_INVALID,
    CHAT_PATH,
    IMPROPER,
    INVALID_MODEL,
    NO_PROFILE,
    TOO_LONG,
    Account,
    Chunking,
    ErrorReply,
    FakeKiro,
    Limits,
    StreamReply,
    client_id_hash,
    profile_file_path,
    scenarios,
    token_file_path,
    write_client_registration,
    write_profile_file,
    write_token_file,
)
from tests.fake_kiro.validation import BAD_CONVERSATION_ID
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv

pytest_plugins = ["tests.fixtures_kiro"]

MODEL = "claude-sonnet-4.5"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
MULTIBYTE = "你好 🎉 é"
WEATHER_TOOL = {
    "toolSpecification": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
}


def user(content: str, **extra: Any) -> dict[str, Any]:
    return {"content": content, "modelId": MODEL, "origin": "AI_EDITOR", **extra}


def simple_body(account: Account, content: str = "hello") -> dict[str, Any]:
    return {
        "conversationState": {
            "chatTriggerType": "MANUAL",
            "conversationId": str(uuid.uuid4()),
            "currentMessage": {"userInputMessage": user(content)},
        },
        "profileArn": account.profile_arn,
    }


def tool_round_trip_body(account: Account) -> dict[str, Any]:
    """History with an image and a tool call; the current message answers it and declares the tool."""
    body = simple_body(account, "Thanks")
    state = body["conversationState"]
    state["history"] = [
        {"userInputMessage": user("Weather in Paris?", images=[{"format": "png", "source": {"bytes": PNG}}])},
        {
            "assistantResponseMessage": {
                "content": "Checking.",
                "toolUses": [{"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}],
            }
        },
    ]
    state["currentMessage"]["userInputMessage"]["userInputMessageContext"] = {
        "toolResults": [{"toolUseId": "tooluse_1", "content": [{"text": "Sunny"}], "status": "success"}],
        "tools": [copy.deepcopy(WEATHER_TOOL)],
    }
    return body


def chat_headers(account: Account) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {account.access_token}",
        "Content-Type": "application/x-amz-json-1.0",
        "x-amz-target": "AmazonCodeWhispererStreamingService.GenerateAssistantResponse",
        "User-Agent": "aws-sdk-js/1.0.34 ua/2.1 os/linux lang/js md/nodejs#22.0.0 m/E KiroIDE-0.11.107-" + "ab" * 32,
        "amz-sdk-invocation-id": str(uuid.uuid4()),
    }


def management_headers(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}", "User-Agent": "KiroIDE-0.11.107-" + "ab" * 32}


def post_chat(fake: FakeKiro, body: Any, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(fake.base_url + CHAT_PATH, content=raw, headers=headers, **kwargs)


def decode(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(message.headers), message.payload) for message in buffer]


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    return [(h.get(":event-type") or h.get(":exception-type", ""), json.loads(p or b"{}")) for h, p in decode(raw)]


def joined_content(raw: bytes) -> str:
    return "".join(p["content"] for name, p in events(raw) if name == "assistantResponseEvent")


@pytest.fixture
def account(fake_kiro: FakeKiro) -> Account:
    return fake_kiro.accounts.add_social()


# ---- the stream ----------------------------------------------------------------------------------------


def test_chat_default_reply_is_botocore_decodable_echo(fake_kiro: FakeKiro, account: Account) -> None:
    response = post_chat(fake_kiro, simple_body(account, f"Say {MULTIBYTE}"), chat_headers(account))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["transfer-encoding"] == "chunked"
    frames = decode(response.content)
    for headers, payload in frames:
        assert set(headers) == {":event-type", ":content-type", ":message-type"}
        compact = json.dumps(json.loads(payload), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        assert payload == compact.encode()
    names = [name for name, _ in events(response.content)]
    assert names[-2:] == ["contextUsageEvent", "meteringEvent"]
    assert names.count("assistantResponseEvent") == len(names) - 2 > 1
    assert joined_content(response.content) == f"Echo: Say {MULTIBYTE}"
    assert events(response.content)[-2:] == scenarios.usage()


def test_chat_echo_keeps_first_200_characters_without_markers(fake_kiro: FakeKiro, account: Account) -> None:
    content = "[[fake:bytes]] " + "x" * 300
    response = post_chat(fake_kiro, simple_body(account, content), chat_headers(account))

    assert joined_content(response.content) == "Echo: " + "x" * 200


TOOL_MARKER = '[[fake:tool:get_weather:{"city":"Paris"}]]'


def test_chat_tool_marker_streams_start_fragments_stop(fake_kiro: FakeKiro, account: Account) -> None:
    response = post_chat(fake_kiro, simple_body(account, f"weather? {TOOL_MARKER}"), chat_headers(account))

    tool_events = [p for name, p in events(response.content) if name == "toolUseEvent"]
    start, *fragments, stop = tool_events
    assert set(start) == {"name", "toolUseId"} and start["toolUseId"].startswith("tooluse_")
    assert len(fragments) >= 3 and all(set(f) == {"input", "name", "toolUseId"} for f in fragments)
    assert stop == {"name": "get_weather", "stop": True, "toolUseId": start["toolUseId"]}
    assert json.loads("".join(f["input"] for f in fragments)) == {"city": "Paris"}


def _content_of(raw: bytes) -> str:
    return joined_content(raw)


@pytest.mark.parametrize(
    ("marker", "check"),
    [
        ("[[fake:thinking]]", lambda raw: _content_of(raw).startswith("<thinking>")),
        ("[[fake:thinking]]", lambda raw: "</thinking>\n\nEcho: hi" in _content_of(raw)),
        ("[[fake:reasoning]]", lambda raw: any(n == "reasoningContentEvent" for n, _ in events(raw))),
        (
            '[[fake:bracket:get_weather:{"city":"Paris"}]]',
            lambda raw: '[Called get_weather with args: {"city": "Paris"}]' in _content_of(raw),
        ),
        ("[[fake:truncated_tool:get_weather]]", lambda raw: not any(p.get("stop") for _, p in events(raw))),
        ("[[fake:duplicate]]", lambda raw: events(raw)[0] == events(raw)[1]),
        ("[[fake:long:5]]", lambda raw: _content_of(raw) == "".join(f"word{i} " for i in range(5))),
        (
            "[[fake:exception:ContentLengthExceededException]]",
            lambda raw: decode(raw)[-1][0][":exception-type"] == "ContentLengthExceededException",
        ),
        ("[[fake:random:3]]", lambda raw: _content_of(raw) == "Echo: hi"),
    ],
)
def test_chat_marker_selects_scenario(
    fake_kiro: FakeKiro, account: Account, marker: str, check: Callable[[bytes], bool]
) -> None:
    response = post_chat(fake_kiro, simple_body(account, f"hi {marker}"), chat_headers(account))

    assert response.status_code == 200
    assert check(response.content)


def test_chat_error_marker_answers_http_error(fake_kiro: FakeKiro, account: Account) -> None:
    response = post_chat(fake_kiro, simple_body(account, "hi [[fake:error:429]]"), chat_headers(account))

    assert response.status_code == 429
    assert response.json() == scenarios.HIGH_TRAFFIC


def test_chat_script_is_used_in_order_then_default(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(ErrorReply(500, scenarios.INTERNAL), StreamReply(scenarios.text("scripted")))

    first = post_chat(fake_kiro, simple_body(account), chat_headers(account))
    second = post_chat(fake_kiro, simple_body(account), chat_headers(account))
    third = post_chat(fake_kiro, simple_body(account), chat_headers(account))

    assert (first.status_code, first.json()) == (500, scenarios.INTERNAL)
    assert joined_content(second.content) == "scripted"
    assert joined_content(third.content) == "Echo: hello"


def test_chat_invalid_request_does_not_consume_script(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("kept")))

    rejected = post_chat(fake_kiro, simple_body(account, ""), chat_headers(account))
    accepted = post_chat(fake_kiro, simple_body(account), chat_headers(account))

    assert rejected.status_code == 400
    assert joined_content(accepted.content) == "kept"


def test_fail_next_fires_given_times_before_validation(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.fail_next(CHAT_PATH, 503, scenarios.UNAVAILABLE, times=2)

    statuses = [post_chat(fake_kiro, simple_body(account), {}).status_code for _ in range(2)]
    after = post_chat(fake_kiro, simple_body(account), chat_headers(account))

    assert statuses == [503, 503]
    assert after.status_code == 200


# ---- delivery: chunking, delays, faults ---------------------------------------------------------------

MULTIBYTE_REPLY = scenarios.text(MULTIBYTE, "more " + MULTIBYTE) + scenarios.tool_call("f", '{"k":"é"}')


@pytest.mark.parametrize(
    ("chunking", "writes"),
    [
        (Chunking.whole(), lambda n_frames, size: 1),
        (Chunking.per_frame(), lambda n_frames, size: n_frames),
        (Chunking.one_byte(), lambda n_frames, size: size),
        (Chunking.fixed(3, 7), None),
        (Chunking.random(seed=1), None),
        (Chunking.random(seed=2, max_size=5), None),
    ],
)
def test_chunking_writes_join_to_the_same_bytes(
    chunking: Chunking, writes: Callable[[int, int], int] | None
) -> None:
    reference = StreamReply(MULTIBYTE_REPLY, chunking=Chunking.whole())
    reply = StreamReply(MULTIBYTE_REPLY, chunking=chunking, pause=(2, 0.5), chunk_interval=0.001)

    plan = reply.plan()
    data = [step for step in plan if isinstance(step, bytes)]

    assert b"".join(data) == reference.body()
    assert 0.5 in plan
    if writes is not None:
        assert len(data) == writes(len(reply.frames()), len(reference.body()))


def test_chunking_one_byte_splits_everywhere() -> None:
    body = StreamReply(MULTIBYTE_REPLY).body()

    cuts = Chunking.one_byte().cuts(len(body), [])

    # Every offset is a cut: inside preludes, header names, CRCs and each byte of "你", "🎉" and "é".
    assert cuts == set(range(1, len(body)))
    assert body.find("🎉".encode()) > 0


def test_chunking_random_is_reproducible_per_seed() -> None:
    assert Chunking.random(7).cuts(1000, []) == Chunking.random(7).cuts(1000, [])
    assert Chunking.random(7).cuts(1000, []) != Chunking.random(8).cuts(1000, [])


def test_stream_one_byte_writes_arrive_intact_over_http(fake_kiro: FakeKiro, account: Account) -> None:
    reply = StreamReply(MULTIBYTE_REPLY, chunking=Chunking.one_byte(), chunk_interval=0.0005)
    fake_kiro.script(reply)

    with httpx.stream("POST", fake_kiro.base_url + CHAT_PATH, json=simple_body(account), headers=chat_headers(account)) as r:
        chunks = list(r.iter_raw())

    assert b"".join(chunks) == reply.body()
    assert len(chunks) > 1
    assert joined_content(b"".join(chunks)) == MULTIBYTE + "more " + MULTIBYTE


def test_stream_corrupt_frame_fails_crc_check(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("a", "b", "c"), corrupt_frame=1))

    response = post_chat(fake_kiro, simple_body(account), chat_headers(account))

    buffer = EventStreamBuffer()
    buffer.add_data(response.content)
    assert next(buffer).payload == b'{"content":"a"}'
    with pytest.raises(ChecksumMismatch):
        next(buffer)


def test_stream_disconnect_drops_connection_after_frames(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("a", "b", "c"), disconnect_after_frames=2))
    received = b""

    with pytest.raises(httpx.RemoteProtocolError):  # noqa: PT012 - the error comes while reading
        with httpx.stream("POST", fake_kiro.base_url + CHAT_PATH, json=simple_body(account), headers=chat_headers(account)) as r:
            for chunk in r.iter_raw():
                received += chunk

    assert joined_content(received) == "ab"


def test_stream_raw_tail_follows_the_frames(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("a"), raw_tail=b"\x00\x00\x00\x40\x00"))

    response = post_chat(fake_kiro, simple_body(account), chat_headers(account))

    assert response.content.endswith(b"\x00\x00\x00\x40\x00")
    assert joined_content(response.content) == "a"


def test_stream_pause_stalls_after_the_given_frame(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("first", "second"), pause=(1, 5.0)))
    received = b""

    with pytest.raises(httpx.ReadTimeout):  # noqa: PT012
        with httpx.stream(
            "POST", fake_kiro.base_url + CHAT_PATH, json=simple_body(account), headers=chat_headers(account), timeout=0.5
        ) as r:
            for chunk in r.iter_raw():
                received += chunk

    assert joined_content(received) == "first"


def test_stream_first_byte_delay_holds_back_the_status_line(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("late"), first_byte_delay=5.0))

    with pytest.raises(httpx.ReadTimeout):
        post_chat(fake_kiro, simple_body(account), chat_headers(account), timeout=0.5)


def test_server_sets_tcp_nodelay_on_connections(fake_kiro: FakeKiro, account: Account) -> None:
    post_chat(fake_kiro, simple_body(account), chat_headers(account))

    assert fake_kiro.tcp_nodelay and all(fake_kiro.tcp_nodelay)

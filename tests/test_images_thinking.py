"""Images and extended thinking end to end: SDK clients -> ki2api -> the strict fake Kiro.

Images arrive as data: URLs, http(s) URLs (served here from a loopback server) or Anthropic base64 blocks
and must reach Kiro as inline bytes; thinking must be switched on in Kiro's request and come back as
reasoning (OpenAI) or thinking blocks (Anthropic), never as `<thinking>` text in the answer.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.kiro import images
from tests.fake_kiro import Chunking, StreamReply, scenarios
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4.5"  # prompt-tag thinking (kiro-protocol.md §10.1)
NATIVE_MODEL = "claude-sonnet-4.6"  # advertises additionalModelRequestFields (§10.2)
THOUGHT = "First, 6 times 7. That is 42; no <b>tags</b> confuse me."
ANSWER = "The answer is 42."


def png_bytes(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), color).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png_bytes()
PNG_B64 = base64.b64encode(PNG).decode("ascii")


# --- a loopback image host --------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """What the image host answers on one path."""

    status: int = 200
    content_type: str = "image/png"
    body: bytes = PNG
    stall: bool = False  # hold the answer until the test ends (to exercise the fetch timeout)


@dataclass(frozen=True)
class ImageHost:
    """A loopback HTTP server; tests add `routes` (path -> Route) before asking for `url + path`."""

    url: str
    routes: dict[str, Route]


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    routes: dict[str, Route] = {}
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.stall:
                release.wait(10)
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield ImageHost(f"http://127.0.0.1:{server.server_address[1]}", routes)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- helpers ----------------------------------------------------------------------------------------


def received(proxy: Proxy) -> dict[str, Any]:
    body = proxy.kiro.fake.chat_requests()[-1].json
    assert isinstance(body, dict)
    return body


def current(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def image_message(url: str, text: str = "What is this?") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]}
    ]


def thinking_reply(size: int, chunking: Chunking | None = None) -> StreamReply:
    events = [*scenarios.thinking(THOUGHT, ANSWER, size), *scenarios.usage()]
    return StreamReply(events, chunking=chunking or Chunking.per_frame())


def reasoning_of(obj: Any) -> str:
    """`reasoning_content` of an SDK message or delta; the SDK keeps unknown fields as extras."""
    return str((obj.model_extra or {}).get("reasoning_content") or "")


# --- images -----------------------------------------------------------------------------------------


def test_image_data_url_reaches_kiro_inline(proxy: Proxy) -> None:
    reply = proxy.openai().chat.completions.create(
        model=MODEL, messages=image_message(f"data:image/png;base64,{PNG_B64}")
    )
    assert reply.choices[0].message.content == "Echo: What is this?"
    message = current(received(proxy))
    assert message["images"] == [{"format": "png", "source": {"bytes": PNG_B64}}]
    assert "images" not in message.get("userInputMessageContext", {})


def test_image_http_url_is_fetched(proxy: Proxy, image_host: ImageHost) -> None:
    formats = {"image/png": "png", "image/jpg": "jpeg", "image/webp; charset=binary": "webp"}
    seen = {}
    for index, content_type in enumerate(formats):
        image_host.routes[f"/pic{index}"] = Route(content_type=content_type)
        proxy.openai().chat.completions.create(model=MODEL, messages=image_message(f"{image_host.url}/pic{index}"))
        [image] = current(received(proxy))["images"]
        seen[content_type] = (image["format"], base64.b64decode(image["source"]["bytes"]))
    assert seen == {content_type: (image_format, PNG) for content_type, image_format in formats.items()}


def test_image_anthropic_blocks_base64_url_and_tool_result(proxy: Proxy, image_host: ImageHost) -> None:
    green = png_bytes("green")
    image_host.routes["/green.png"] = Route(body=green)
    messages = [
        {"role": "user", "content": "Take a screenshot."},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_shot", "name": "screenshot", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_shot",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
                    ],
                },
                {"type": "image", "source": {"type": "url", "url": f"{image_host.url}/green.png"}},
                {"type": "text", "text": "Compare them."},
            ],
        },
    ]
    tool = {"name": "screenshot", "description": "Capture the screen.", "input_schema": {"type": "object"}}
    proxy.anthropic().messages.create(model=MODEL, max_tokens=64, tools=[tool], messages=messages)

    message = current(received(proxy))
    sent = [base64.b64decode(i["source"]["bytes"]) for i in message["images"]]
    assert sent == [PNG, green]
    [result] = message["userInputMessageContext"]["toolResults"]
    assert result["toolUseId"] == "toolu_shot"
    assert "image" in result["content"][0]["text"]


def test_image_unsupported_is_clear_400(proxy: Proxy, image_host: ImageHost) -> None:
    image_host.routes["/page"] = Route(content_type="text/html", body=b"<html></html>")
    # URL -> a phrase the error must contain, so the person knows what to change.
    cases = {
        "data:image/bmp;base64," + base64.b64encode(b"BM....").decode(): "PNG",
        "data:text/plain;base64,aGVsbG8=": "image",
        "data:image/png;base64,@@not base64@@": "base64",
        "ftp://example.invalid/cat.png": "URL",
        f"{image_host.url}/missing.png": "HTTP 404",
        f"{image_host.url}/page": "text/html",
    }
    client = proxy.openai()
    seen = {}
    for url, phrase in cases.items():
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=image_message(url))
        error = caught.value.body
        assert isinstance(error, dict)
        seen[url] = (error["type"], phrase in error["message"])
    assert seen == {url: ("invalid_request_error", True) for url in cases}
    assert proxy.kiro.fake.chat_requests() == []


def test_image_unsupported_anthropic_is_clear_400(proxy: Proxy) -> None:
    sources = {
        "bmp": {"type": "base64", "media_type": "image/bmp", "data": base64.b64encode(b"BM....").decode()},
        "files api": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
    }
    seen = {}
    for name, source in sources.items():
        body = {
            "model": MODEL,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": [{"type": "image", "source": source}]}],
        }
        headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
        response = httpx.post(f"{proxy.url}/v1/messages", json=body, headers=headers, timeout=30)
        seen[name] = (response.status_code, response.json()["error"]["type"])
    assert seen == {name: (400, "invalid_request_error") for name in sources}
    assert proxy.kiro.fake.chat_requests() == []


def test_image_http_too_large_is_refused(proxy: Proxy, image_host: ImageHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 64 * 1024)
    image_host.routes["/huge.png"] = Route(body=PNG + b"\0" * 200_000)
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.openai().chat.completions.create(model=MODEL, messages=image_message(f"{image_host.url}/huge.png"))
    assert "larger than" in caught.value.message
    assert proxy.kiro.fake.chat_requests() == []


def test_image_http_slow_host_times_out(proxy: Proxy, image_host: ImageHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "FETCH_TIMEOUT", 0.3)
    image_host.routes["/slow.png"] = Route(stall=True)
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.openai(timeout=10).chat.completions.create(
            model=MODEL, messages=image_message(f"{image_host.url}/slow.png")
        )
    assert "Could not download image" in caught.value.message


# --- thinking switched on -----------------------------------------------------------------------------


def test_reasoning_effort_switches_on_prompt_tags(proxy: Proxy) -> None:
    client = proxy.openai()
    budgets = []
    for effort in ("low", "medium", "high"):
        client.chat.completions.create(
            model=MODEL, reasoning_effort=effort, messages=[{"role": "user", "content": "think"}]
        )
        content = current(received(proxy))["content"]
        assert content.startswith("<thinking_mode>enabled</thinking_mode><max_thinking_length>")
        assert content.endswith("think")
        budgets.append(int(content.split("<max_thinking_length>")[1].split("<")[0]))
        assert "additionalModelRequestFields" not in received(proxy)
    assert budgets == sorted(budgets) and len(set(budgets)) == 3


def test_reasoning_effort_native_model_uses_model_fields(proxy: Proxy) -> None:
    proxy.openai().chat.completions.create(
        model=NATIVE_MODEL, reasoning_effort="medium", messages=[{"role": "user", "content": "think"}]
    )
    body = received(proxy)
    assert body["additionalModelRequestFields"]["thinking"]["type"] == "adaptive"
    assert body["additionalModelRequestFields"]["output_config"] == {"effort": "medium"}
    assert current(body)["content"] == "think"


def test_thinking_off_unless_asked(proxy: Proxy) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [(MODEL, {}), (MODEL, {"reasoning_effort": "none"}), (NATIVE_MODEL, {})]
    for model, extra in cases:
        proxy.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **extra)
        body = received(proxy)
        assert current(body)["content"] == "hi", (model, extra)
        assert "additionalModelRequestFields" not in body, (model, extra)


def test_thinking_model_suffix_switches_on_thinking(proxy: Proxy) -> None:
    proxy.kiro.fake.script(thinking_reply(8))
    reply = proxy.openai().chat.completions.create(
        model="claude-sonnet-4-5-thinking", messages=[{"role": "user", "content": "6*7?"}]
    )
    body = received(proxy)
    assert current(body)["modelId"] == "claude-sonnet-4.5"
    assert current(body)["content"].startswith("<thinking_mode>enabled</thinking_mode>")
    assert (reasoning_of(reply.choices[0].message), reply.choices[0].message.content) == (THOUGHT, ANSWER)


def test_anthropic_thinking_budget_reaches_prompt(proxy: Proxy) -> None:
    for budget in (2_048, 12_000):
        proxy.anthropic().messages.create(
            model=MODEL,
            max_tokens=16_000,
            thinking={"type": "enabled", "budget_tokens": budget},
            messages=[{"role": "user", "content": "think"}],
        )
        assert f"<max_thinking_length>{budget}</max_thinking_length>" in current(received(proxy))["content"]


# --- thinking coming back -------------------------------------------------------------------------------


def test_openai_thinking_split_across_chunks_never_leaks(proxy: Proxy) -> None:
    # Delta sizes put the tags' edges at every kind of cut; one-byte network chunks split the frames too.
    splits = {
        "1-char deltas": (1, None),
        "4-char deltas": (4, None),
        "9-char deltas": (9, None),
        "one delta": (200, None),
        "1-byte network chunks": (7, Chunking.one_byte()),
    }
    client = proxy.openai()
    request: dict[str, Any] = {
        "model": MODEL,
        "reasoning_effort": "high",
        "messages": [{"role": "user", "content": "?"}],
    }
    seen = {}
    for name, (size, chunking) in splits.items():
        proxy.kiro.fake.script(thinking_reply(size, chunking), thinking_reply(size, chunking))
        whole = client.chat.completions.create(**request).choices[0].message
        reasoning, content = [], []
        for chunk in client.chat.completions.create(stream=True, **request):
            for choice in chunk.choices:
                reasoning.append(reasoning_of(choice.delta))
                content.append(choice.delta.content or "")
        seen[name] = ((reasoning_of(whole), whole.content), ("".join(reasoning), "".join(content)))
    assert seen == {name: ((THOUGHT, ANSWER), (THOUGHT, ANSWER)) for name in splits}


def test_openai_reasoning_content_event(proxy: Proxy) -> None:
    reply = proxy.openai().chat.completions.create(
        model=MODEL, reasoning_effort="low", messages=[{"role": "user", "content": "hi [[fake:reasoning]]"}]
    )
    message = reply.choices[0].message
    assert reasoning_of(message) == scenarios.THOUGHT
    assert message.content is not None and message.content.startswith("Echo: ")
    assert "<thinking>" not in message.content


def test_anthropic_thinking_non_stream_blocks(proxy: Proxy) -> None:
    proxy.kiro.fake.script(thinking_reply(5))
    message = proxy.anthropic().messages.create(
        model=MODEL,
        max_tokens=8_000,
        thinking={"type": "enabled", "budget_tokens": 4_000},
        messages=[{"role": "user", "content": "6*7?"}],
    )
    thinking, text = message.content
    assert (thinking.type, thinking.thinking) == ("thinking", THOUGHT)
    assert thinking.signature
    assert (text.type, text.text) == ("text", ANSWER)
    assert message.stop_reason == "end_turn"


def test_anthropic_thinking_stream_event_sequence(proxy: Proxy) -> None:
    proxy.kiro.fake.script(thinking_reply(3))
    body = {
        "model": MODEL,
        "max_tokens": 8_000,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 4_000},
        "messages": [{"role": "user", "content": "6*7?"}],
    }
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
    response = httpx.post(f"{proxy.url}/v1/messages", json=body, headers=headers, timeout=30)
    events = [json.loads(line[len("data:") :]) for line in response.text.splitlines() if line.startswith("data:")]

    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    blocks = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert blocks == ["thinking", "text"]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == THOUGHT
    assert "".join(d.get("text", "") for d in deltas) == ANSWER
    signature_at = kinds.index("content_block_stop") - 1
    assert events[signature_at]["delta"]["type"] == "signature_delta"


def test_anthropic_thinking_sdk_stream_accumulates(proxy: Proxy) -> None:
    proxy.kiro.fake.script(thinking_reply(2))
    with proxy.anthropic().messages.stream(
        model=MODEL,
        max_tokens=8_000,
        thinking={"type": "enabled", "budget_tokens": 4_000},
        messages=[{"role": "user", "content": "6*7?"}],
    ) as stream:
        final = stream.get_final_message()
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in final.content] == [
        ("thinking", THOUGHT),
        ("text", ANSWER),
    ]

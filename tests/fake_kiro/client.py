"""A minimal well-behaved Kiro client for tests and benchmarks that talk to the fake directly.

Builds requests the way kiro-protocol.md §3 describes them and decodes the answer with botocore's own
event-stream parser, so nothing here shares code with ki2api's translator or decoder.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]

from .accounts import Account
from .replies import Event
from .server import CHAT_PATH, FakeKiro
from .validation import AMZ_JSON, TARGET

MODEL = "claude-sonnet-4.5"
# §3.2: the IDE flavour of the user agent; any stable 64-hex machine id is accepted.
USER_AGENT = "aws-sdk-js/1.0.34 ua/2.1 os/linux lang/js md/nodejs#22.0.0 api/codewhispererstreaming#1.0.34 m/E"
KIRO_IDE = "KiroIDE-0.11.107-" + "ab" * 32


def user_message(content: str, model_id: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"content": content, "modelId": model_id, "origin": "AI_EDITOR", **extra}


def chat_body(account: Account, content: str = "hello", model_id: str = MODEL) -> dict[str, Any]:
    """The smallest valid generateAssistantResponse body (§3.3) for this account."""
    return {
        "conversationState": {
            "chatTriggerType": "MANUAL",
            "conversationId": str(uuid.uuid4()),
            "currentMessage": {"userInputMessage": user_message(content, model_id)},
        },
        "profileArn": account.profile_arn,
    }


def chat_headers(account: Account) -> dict[str, str]:
    """The runtime host's headers (§3.0, §3.2)."""
    return {
        "Authorization": f"Bearer {account.access_token}",
        "Content-Type": AMZ_JSON,
        "x-amz-target": TARGET,
        "User-Agent": f"{USER_AGENT} {KIRO_IDE}",
        "x-amz-user-agent": f"aws-sdk-js/1.0.34 {KIRO_IDE}",
        "amz-sdk-invocation-id": str(uuid.uuid4()),
        "amz-sdk-request": "attempt=1; max=3",
    }


def management_headers(account: Account) -> dict[str, str]:
    """Headers for ListAvailableModels / getUsageLimits / ListAvailableProfiles (§4.3, §7)."""
    return {"Authorization": f"Bearer {account.access_token}", "User-Agent": KIRO_IDE}


def post_chat(fake: FakeKiro, body: dict[str, Any] | bytes, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(fake.base_url + CHAT_PATH, content=raw, headers=headers, **kwargs)


def q_base(fake: FakeKiro, region: str = "us-east-1") -> str:
    return fake.q_url.replace("{region}", region)


def post_q_chat(
    fake: FakeKiro, body: dict[str, Any], headers: dict[str, str], region: str = "us-east-1"
) -> httpx.Response:
    """Path-style chat on the AWS surface `q.{region}` (kiro-protocol-2026.md §1.1)."""
    return httpx.post(q_base(fake, region) + CHAT_PATH, content=json.dumps(body).encode(), headers=headers)


def q_operation(
    fake: FakeKiro, operation: str, body: dict[str, Any], headers: dict[str, str], region: str = "us-east-1"
) -> httpx.Response:
    """An AWS JSON 1.0 control-plane call: `POST /` with `x-amz-target` (kiro-protocol-2026.md §1.4)."""
    sent = {
        **headers,
        "Content-Type": "application/x-amz-json-1.0",
        "x-amz-target": f"AmazonCodeWhispererService.{operation}",
    }
    return httpx.post(q_base(fake, region) + "/", content=json.dumps(body).encode(), headers=sent)


def decode_frames(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """(headers, payload) of every frame, parsed and CRC-checked by botocore."""
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(message.headers), message.payload) for message in buffer]


def decoded_events(raw: bytes) -> list[Event]:
    """(event or exception type, payload JSON) of every frame."""
    return [
        (str(h.get(":event-type") or h.get(":exception-type", "")), json.loads(p or b"{}"))
        for h, p in decode_frames(raw)
    ]


def joined_content(raw: bytes) -> str:
    """All assistantResponseEvent text, in order."""
    return "".join(p["content"] for name, p in decoded_events(raw) if name == "assistantResponseEvent")

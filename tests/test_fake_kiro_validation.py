"""The fake Kiro's request rules: each bad case gets the body the real service sends (kiro-protocol.md §8, §11).

Every case starts from one well-formed request with history, an image and a tool round trip, changes one
thing, and checks both the answer and which rule fired (many rules share the generic 400 body).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.fake_kiro import (
    BAD_BEARER,
    BODY_INVALID,
    IMPROPER,
    INVALID_MODEL,
    NO_PROFILE,
    TOO_LONG,
    Account,
    FakeKiro,
    Limits,
)
from tests.fake_kiro.client import chat_body, chat_headers, decoded_events, post_chat, post_q_chat, user_message
from tests.fake_kiro.validation import BAD_CONVERSATION_ID

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
WEATHER_TOOL = {
    "toolSpecification": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
}


def tool_round_trip_body(account: Account) -> dict[str, Any]:
    """History with an image and a tool call; the current message answers it and declares the tool."""
    body = chat_body(account, "Thanks")
    state = body["conversationState"]
    state["history"] = [
        {"userInputMessage": user_message("Weather in Paris?", images=[{"format": "png", "source": {"bytes": PNG}}])},
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


@pytest.fixture
def account(fake_kiro: FakeKiro) -> Account:
    return fake_kiro.accounts.add_social()


@dataclass
class Call:
    """One chat request under construction; a case mutates it before it is sent."""

    fake: FakeKiro
    account: Account
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> dict[str, Any]:
        return self.body["conversationState"]  # type: ignore[no-any-return]

    @property
    def current(self) -> dict[str, Any]:
        return self.state["currentMessage"]["userInputMessage"]  # type: ignore[no-any-return]

    @property
    def context(self) -> dict[str, Any]:
        return self.current["userInputMessageContext"]  # type: ignore[no-any-return]

    @property
    def tool_spec(self) -> dict[str, Any]:
        return self.context["tools"][0]["toolSpecification"]  # type: ignore[no-any-return]

    @property
    def tool_use(self) -> dict[str, Any]:
        return self.state["history"][1]["assistantResponseMessage"]["toolUses"][0]  # type: ignore[no-any-return]

    def send(self) -> httpx.Response:
        return post_chat(self.fake, self.raw if self.raw is not None else self.body, self.headers)


def _set(path: str, value: Any) -> Callable[[Call], object]:
    """A case that sets one dotted path (numbers index lists) in the body."""

    def apply(call: Call) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = call.body
        for key in parents:
            target = target[key]
        target[last] = value

    return apply


def _other_account_arn(call: Call) -> None:
    call.body["profileArn"] = call.fake.accounts.add_social().profile_arn


def _append_user_turn(call: Call) -> None:
    call.state["history"].append({"userInputMessage": user_message("x")})


def _limit(**limits: Any) -> Callable[[Call], object]:
    def apply(call: Call) -> None:
        call.fake.limits = Limits(**limits)

    return apply


H = "conversationState.history"
CUR = "conversationState.currentMessage.userInputMessage"
CTX = CUR + ".userInputMessageContext"
SPEC = CTX + ".tools.0.toolSpecification"

REJECTIONS: list[tuple[str, Callable[[Call], object], int, dict[str, Any], str]] = [
    ("no_authorization", lambda c: c.headers.pop("Authorization"), 403, BAD_BEARER, "access token"),
    ("unknown_token", lambda c: c.headers.update(Authorization="Bearer aoaNOPE"), 403, BAD_BEARER, "access token"),
    ("not_bearer", lambda c: c.headers.update(Authorization=f"Token {c.account.access_token}"), 403, BAD_BEARER, ""),
    ("expired_token", lambda c: c.fake.accounts.expire_access_tokens(c.account), 403, BAD_BEARER, "expired"),
    ("json_content_type", lambda c: c.headers.update({"Content-Type": "application/json"}), 400, IMPROPER, "Content"),
    ("no_target", lambda c: c.headers.pop("x-amz-target"), 400, IMPROPER, "x-amz-target"),
    ("foreign_user_agent", lambda c: c.headers.update({"User-Agent": "python-httpx"}), 400, IMPROPER, "KiroIDE"),
    ("no_invocation_id", lambda c: c.headers.pop("amz-sdk-invocation-id"), 400, IMPROPER, "invocation"),
    ("body_over_cap", _limit(max_body_bytes=300), 400, IMPROPER, "over 300"),
    ("not_json", lambda c: setattr(c, "raw", b'{"conversationState":'), 400, IMPROPER, "not JSON"),
    ("json_array", lambda c: setattr(c, "raw", b"[]"), 400, IMPROPER, "object"),
    ("no_profile_arn", lambda c: c.body.pop("profileArn"), 400, NO_PROFILE, "missing"),
    (
        "placeholder_arn",
        _set("profileArn", "arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX"),
        400,
        BODY_INVALID,
        "placeholder",
    ),
    ("malformed_arn", _set("profileArn", "arn:aws:codewhisperer:x:1:profile/p"), 400, BODY_INVALID, "malformed"),
    ("foreign_arn", _other_account_arn, 400, BODY_INVALID, "another account"),
    ("trigger_auto", _set("conversationState.chatTriggerType", "AUTO"), 400, IMPROPER, "MANUAL"),
    ("conversation_id", _set("conversationState.conversationId", "conv-0123"), 400, BAD_CONVERSATION_ID, "UUID"),
    ("empty_content", _set(CUR + ".content", ""), 400, IMPROPER, "content"),
    ("legacy_model", _set(CUR + ".modelId", "CLAUDE_SONNET_4_20250514_V1_0"), 400, INVALID_MODEL, "model list"),
    ("unknown_model", _set(CUR + ".modelId", "gpt-4o"), 400, INVALID_MODEL, "model list"),
    ("cli_origin", _set(CUR + ".origin", "KIRO_CLI"), 400, IMPROPER, "origin"),
    (
        "current_is_assistant",
        _set("conversationState.currentMessage", {"assistantResponseMessage": {}}),
        400,
        IMPROPER,
        "currentMessage",
    ),
    ("history_starts_assistant", lambda c: c.state["history"].reverse(), 400, IMPROPER, "alternate"),
    (
        "history_ends_user",
        lambda c: c.state["history"].append({"userInputMessage": user_message("x")}),
        400,
        IMPROPER,
        "ends",
    ),
    ("history_no_model", lambda c: c.state["history"][0]["userInputMessage"].pop("modelId"), 400, IMPROPER, "modelId"),
    ("history_empty_reply", _set(H + ".1.assistantResponseMessage.content", ""), 400, IMPROPER, "content"),
    ("empty_tool_uses", _set(H + ".1.assistantResponseMessage.toolUses", []), 400, IMPROPER, "toolUses"),
    ("tool_input_string", lambda c: c.tool_use.update(input='{"city":"Paris"}'), 400, IMPROPER, "input"),
    ("tool_input_empty_key", lambda c: c.tool_use.update(input={"": 1}), 400, IMPROPER, "empty-string key"),
    ("orphan_result", _set(CTX + ".toolResults.0.toolUseId", "tooluse_other"), 400, IMPROPER, "do not answer"),
    ("unanswered_use", lambda c: c.context.pop("toolResults"), 400, IMPROPER, "do not answer"),
    ("result_status", _set(CTX + ".toolResults.0.status", "ok"), 400, IMPROPER, "status"),
    ("result_content_str", _set(CTX + ".toolResults.0.content", "Sunny"), 400, IMPROPER, "content"),
    ("result_json_block", _set(CTX + ".toolResults.0.content", [{"json": {}}]), 400, IMPROPER, "{text}"),
    ("tool_name_65", _set(SPEC + ".name", "t" * 65), 400, IMPROPER, "over 64"),
    ("description_10001", _set(SPEC + ".description", "d" * 10_001), 400, IMPROPER, "over 10000"),
    ("empty_description", _set(SPEC + ".description", ""), 400, IMPROPER, "description"),
    (
        "additional_properties",
        _set(SPEC + ".inputSchema.json.properties.city", {"type": "object", "additionalProperties": False}),
        400,
        IMPROPER,
        "additionalProperties",
    ),
    ("empty_required", _set(SPEC + ".inputSchema.json.required", []), 400, IMPROPER, "empty required"),
    ("undeclared_tool", _set(SPEC + ".name", "get_time"), 400, IMPROPER, "not declared"),
    ("no_tools", lambda c: c.context.pop("tools"), 400, IMPROPER, "not declared"),
    ("tool_twice", lambda c: c.context["tools"].append(copy.deepcopy(WEATHER_TOOL)), 400, IMPROPER, "twice"),
    (
        "image_in_context",
        lambda c: c.context.update(images=c.state["history"][0]["userInputMessage"].pop("images")),
        400,
        IMPROPER,
        "images belong",
    ),
    ("image_mime_format", _set(H + ".0.userInputMessage.images.0.format", "image/png"), 400, IMPROPER, "MIME"),
    (
        "image_data_url",
        _set(H + ".0.userInputMessage.images.0.source.bytes", "data:image/png;base64," + PNG),
        400,
        IMPROPER,
        "base64",
    ),
    (
        "image_typed_source",
        _set(H + ".0.userInputMessage.images.0.source", {"type": "bytes", "data": PNG}),
        400,
        IMPROPER,
        "base64",
    ),
    ("context_too_long", _limit(context_chars=20), 400, TOO_LONG, "over 20"),
    (
        "extra_fields_old_model",
        _set("additionalModelRequestFields", {"thinking": {"type": "adaptive"}}),
        400,
        IMPROPER,
        "takes no",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "status", "body", "detail"),
    [pytest.param(m, s, b, d, id=name) for name, m, s, b, d in REJECTIONS],
)
def test_chat_validation_rejects_like_kiro(
    fake_kiro: FakeKiro,
    account: Account,
    mutate: Callable[[Call], object],
    status: int,
    body: dict[str, Any],
    detail: str,
) -> None:
    call = Call(fake_kiro, account, tool_round_trip_body(account), chat_headers(account))
    mutate(call)

    response = call.send()

    assert (response.status_code, response.json()) == (status, body)
    assert detail in fake_kiro.rejections[-1].detail


def _opus_with_effort(effort: str) -> Callable[[Call], object]:
    def apply(call: Call) -> None:
        for turn in [call.current, call.state["history"][0]["userInputMessage"]]:
            turn["modelId"] = "claude-opus-4.6"
        call.body["additionalModelRequestFields"] = {
            "thinking": {"type": "adaptive", "display": "summarized"},
            "output_config": {"effort": effort},
            "max_tokens": 32000,
        }

    return apply


ACCEPTED: list[tuple[str, Callable[[Call], object]]] = [
    ("tool_round_trip", lambda c: None),
    ("tool_name_other_case", lambda c: c.tool_spec.update(name="Get_Weather")),
    ("limits_exactly", lambda c: c.tool_spec.update(description="d" * 10_000)),
    ("history_without_origin", lambda c: c.state["history"][0]["userInputMessage"].pop("origin")),
    ("opus_extra_fields", _opus_with_effort("max")),
    ("whitespace_content", _set(CUR + ".content", " ")),
]


@pytest.mark.parametrize("mutate", [pytest.param(m, id=name) for name, m in ACCEPTED])
def test_chat_validation_accepts_well_formed(
    fake_kiro: FakeKiro, account: Account, mutate: Callable[[Call], object]
) -> None:
    call = Call(fake_kiro, account, tool_round_trip_body(account), chat_headers(account))
    mutate(call)

    response = call.send()

    assert response.status_code == 200, fake_kiro.rejections
    assert decoded_events(response.content)[-1][0] == "meteringEvent"


def test_chat_validation_rejects_unknown_effort(fake_kiro: FakeKiro, account: Account) -> None:
    call = Call(fake_kiro, account, tool_round_trip_body(account), chat_headers(account))
    _opus_with_effort("extreme")(call)

    response = call.send()

    assert (response.status_code, response.json()) == (400, IMPROPER)
    assert "effort" in fake_kiro.rejections[-1].detail


def test_chat_external_idp_needs_token_type_header_on_q(fake_kiro: FakeKiro) -> None:
    account = fake_kiro.accounts.add_external_idp()
    headers = chat_headers(account)

    without = post_q_chat(fake_kiro, chat_body(account), headers)
    with_header = post_q_chat(fake_kiro, chat_body(account), {**headers, "TokenType": "EXTERNAL_IDP"})
    on_runtime = post_chat(fake_kiro, chat_body(account), {**headers, "TokenType": "EXTERNAL_IDP"})

    assert (without.status_code, without.json()) == (403, BAD_BEARER)
    assert with_header.status_code == 200
    # 2026 §1.1 (OR kiro.ts): the runtime host refuses these tokens outright.
    assert (on_runtime.status_code, on_runtime.json()) == (403, BAD_BEARER)

"""The fake's host rules, checked against kiro-protocol-2026.md §1.1 (acceptance matrix), §1.4, §2, §3 and §7.

These talk to the fake directly with a hand-built client, so they pin what the fake answers whatever ki2api
does; the end-to-end tests in test_login_kinds.py then show that ki2api lives with those answers.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_kiro import BAD_BEARER, NO_PROFILE, Account, FakeKiro
from tests.fake_kiro.accounts import BUILDER_ID_PLACEHOLDER_ARN
from tests.fake_kiro.client import chat_body, chat_headers, post_chat, post_q_chat, q_operation
from tests.fake_kiro.host_rules import (
    BUILDER_ID_UNSUPPORTED,
    INVALID_PROFILE_ARN,
    NOT_AUTHORIZED,
    QUOTA_BODIES,
    RUNTIME_BODY_INVALID,
    SUSPENDED,
    SUSPICIOUS,
)
from tests.fake_kiro.validation import IMPROPER


def _login(fake: FakeKiro, kind: str) -> tuple[Account, dict[str, str], dict[str, Any]]:
    """An account of `kind`, the headers its login must send, and the chat body it must send (§1.1)."""
    add = {
        "social": fake.accounts.add_social,
        "idc": fake.accounts.add_idc,
        "builder_id": fake.accounts.add_builder_id,
        "external_idp": fake.accounts.add_external_idp,
        "api_key": fake.accounts.add_api_key,
    }[kind]
    account = add()
    headers = chat_headers(account)
    if kind == "external_idp":
        headers["TokenType"] = "EXTERNAL_IDP"
    if kind == "api_key":
        headers["tokentype"] = "API_KEY"
    body = chat_body(account)
    if not account.profile_arn:
        del body["profileArn"]
    return account, headers, body


@pytest.mark.parametrize(
    ("kind", "runtime_status", "runtime_body"),
    [
        ("social", 200, None),
        ("idc", 403, BAD_BEARER),
        ("builder_id", 400, NO_PROFILE),
        ("external_idp", 403, BAD_BEARER),
        ("api_key", 403, BAD_BEARER),
    ],
)
def test_acceptance_matrix(
    fake_kiro: FakeKiro, kind: str, runtime_status: int, runtime_body: dict[str, Any] | None
) -> None:
    _, headers, body = _login(fake_kiro, kind)

    runtime = post_chat(fake_kiro, body, headers)
    q = post_q_chat(fake_kiro, body, headers)

    assert runtime.status_code == runtime_status
    if runtime_body is not None:
        assert runtime.json() == runtime_body
    assert q.status_code == 200, q.text


def test_api_key_needs_its_header_and_no_arn(fake_kiro: FakeKiro) -> None:
    account, headers, body = _login(fake_kiro, "api_key")
    without_header = {k: v for k, v in headers.items() if k != "tokentype"}

    no_header = post_q_chat(fake_kiro, body, without_header)
    with_arn = post_q_chat(
        fake_kiro, {**body, "profileArn": "arn:aws:codewhisperer:us-east-1:111122223333:profile/X"}, headers
    )

    assert account.access_token.startswith("ksk_")
    assert (no_header.status_code, no_header.json()) == (403, NOT_AUTHORIZED)
    assert (with_arn.status_code, with_arn.json()) == (400, INVALID_PROFILE_ARN)


def test_idc_without_arn_looks_like_an_account_problem(fake_kiro: FakeKiro) -> None:
    account, headers, body = _login(fake_kiro, "idc")
    del body["profileArn"]

    response = post_q_chat(fake_kiro, body, headers)

    assert (response.status_code, response.json()) == (403, NOT_AUTHORIZED)


def test_idc_profile_region_decides_the_host(fake_kiro: FakeKiro) -> None:
    account = fake_kiro.accounts.add_idc(region="eu-central-1", sso_region="eu-west-1")
    body, headers = chat_body(account), chat_headers(account)

    on_us = post_q_chat(fake_kiro, body, headers, region="us-east-1")
    on_eu = post_q_chat(fake_kiro, body, headers, region="eu-central-1")
    on_sso = post_q_chat(fake_kiro, body, headers, region="eu-west-1")

    assert (on_us.status_code, on_us.json()) == (400, IMPROPER)  # OR PR #3631
    assert on_eu.status_code == 200
    assert on_sso.status_code == 502  # §1.2: not a profile region, no such host


@pytest.mark.parametrize("rule", ["omit", "placeholder"])
def test_builder_id_arn_rule_is_a_knob(fake_kiro: FakeKiro, rule: str) -> None:
    fake_kiro.rules.builder_id_arn = rule  # type: ignore[assignment]
    _, headers, body = _login(fake_kiro, "builder_id")

    omitted = post_q_chat(fake_kiro, body, headers)
    placeholder = post_q_chat(fake_kiro, {**body, "profileArn": BUILDER_ID_PLACEHOLDER_ARN}, headers)

    assert (omitted.status_code, placeholder.status_code) == ((200, 403) if rule == "omit" else (400, 200))


def test_list_profiles_per_region_and_kind(fake_kiro: FakeKiro) -> None:
    idc, idc_headers, _ = _login(fake_kiro, "idc")
    eu = fake_kiro.accounts.add_idc(region="eu-central-1")
    _, bid_headers, _ = _login(fake_kiro, "builder_id")

    listed = q_operation(fake_kiro, "ListAvailableProfiles", {"maxResults": 10}, idc_headers).json()
    eu_on_us = q_operation(fake_kiro, "ListAvailableProfiles", {"maxResults": 10}, chat_headers(eu)).json()
    eu_on_eu = q_operation(fake_kiro, "ListAvailableProfiles", {}, chat_headers(eu), region="eu-central-1").json()
    bogus = q_operation(fake_kiro, "ListAvailableProfiles", {}, {"Authorization": "Bearer nope"})
    builder = q_operation(fake_kiro, "ListAvailableProfiles", {}, bid_headers)

    assert [p["arn"] for p in listed["profiles"]] == [idc.profile_arn]
    assert eu_on_us["profiles"] == []
    assert [p["arn"] for p in eu_on_eu["profiles"]] == [eu.profile_arn]
    assert (bogus.status_code, bogus.json()["profiles"]) == (200, [])  # §2.1: invalid token, empty list
    assert (builder.status_code, builder.json()) == (403, BUILDER_ID_UNSUPPORTED)


def test_control_plane_needs_json_1_0_and_the_arn(fake_kiro: FakeKiro) -> None:
    idc, headers, _ = _login(fake_kiro, "idc")

    without = q_operation(fake_kiro, "ListAvailableModels", {"origin": "AI_EDITOR"}, headers)
    with_arn = q_operation(
        fake_kiro, "ListAvailableModels", {"origin": "AI_EDITOR", "profileArn": idc.profile_arn}, headers
    )
    usage = q_operation(fake_kiro, "GetUsageLimits", {"origin": "AI_EDITOR", "profileArn": idc.profile_arn}, headers)

    assert (without.status_code, without.json()) == (403, NOT_AUTHORIZED)
    assert with_arn.status_code == 200 and with_arn.json()["models"]
    assert usage.json()["subscriptionInfo"]["subscriptionTitle"] == "KIRO FREE"


@pytest.mark.parametrize(
    ("flag", "status", "body"),
    [
        ("suspended", 403, SUSPENDED),
        ("quota_reason", 402, QUOTA_BODIES["MONTHLY_REQUEST_COUNT"]),
        ("suspicious", 429, SUSPICIOUS),
    ],
)
def test_account_signals_on_every_host(fake_kiro: FakeKiro, flag: str, status: int, body: dict[str, Any]) -> None:
    account, headers, chat = _login(fake_kiro, "social")
    setattr(account, flag, "MONTHLY_REQUEST_COUNT" if flag == "quota_reason" else True)

    runtime = post_chat(fake_kiro, chat, headers)
    q = post_q_chat(fake_kiro, chat, headers)

    assert (runtime.status_code, runtime.json()) == (q.status_code, q.json()) == (status, body)
    assert "suspended" in SUSPENDED["message"] and "locked your account" in SUSPENDED["message"]


def test_runtime_body_invalid_knob_and_unknown_top_level_fields(fake_kiro: FakeKiro) -> None:
    _, headers, body = _login(fake_kiro, "social")

    with_system_prompt = post_q_chat(fake_kiro, {**body, "systemPrompt": "be brief"}, headers)
    fake_kiro.rules.runtime_body_invalid = True
    runtime = post_chat(fake_kiro, body, headers)

    assert (with_system_prompt.status_code, with_system_prompt.json()) == (400, IMPROPER)
    assert (runtime.status_code, runtime.json()) == (400, RUNTIME_BODY_INVALID)

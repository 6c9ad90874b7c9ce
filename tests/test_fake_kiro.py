"""The fake Kiro itself: streams, scripted faults, refresh, control plane, token files, fixtures.

Driven with httpx over loopback and decoded with botocore's own event-stream parser; the request rules
are covered in test_fake_kiro_validation.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer  # type: ignore[import-untyped]

from ki2api_tray import paths
from tests.fake_kiro import (
    BAD_BEARER,
    CHAT_PATH,
    IMPROPER,
    NO_PROFILE,
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
from tests.fake_kiro.client import (
    chat_body,
    chat_headers,
    decode_frames,
    decoded_events,
    joined_content,
    management_headers,
    post_chat,
)
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv

MULTIBYTE = "你好 🎉 é"


@pytest.fixture
def account(fake_kiro: FakeKiro) -> Account:
    return fake_kiro.accounts.add_social()


# ---- the stream ----------------------------------------------------------------------------------------


def test_chat_default_reply_is_botocore_decodable_echo(fake_kiro: FakeKiro, account: Account) -> None:
    response = post_chat(fake_kiro, chat_body(account, f"Say {MULTIBYTE}"), chat_headers(account))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["transfer-encoding"] == "chunked"
    frames = decode_frames(response.content)
    for headers, payload in frames:
        assert set(headers) == {":event-type", ":content-type", ":message-type"}
        compact = json.dumps(json.loads(payload), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        assert payload == compact.encode()
    names = [name for name, _ in decoded_events(response.content)]
    assert names[-2:] == ["contextUsageEvent", "meteringEvent"]
    assert names.count("assistantResponseEvent") == len(names) - 2 > 1
    assert joined_content(response.content) == f"Echo: Say {MULTIBYTE}"
    assert decoded_events(response.content)[-2:] == scenarios.usage()


def test_chat_echo_keeps_first_200_characters_without_markers(fake_kiro: FakeKiro, account: Account) -> None:
    content = "[[fake:bytes]] " + "x" * 300
    response = post_chat(fake_kiro, chat_body(account, content), chat_headers(account))

    assert joined_content(response.content) == "Echo: " + "x" * 200


TOOL_MARKER = '[[fake:tool:get_weather:{"city":"Paris"}]]'


def test_chat_tool_marker_streams_start_fragments_stop(fake_kiro: FakeKiro, account: Account) -> None:
    response = post_chat(fake_kiro, chat_body(account, f"weather? {TOOL_MARKER}"), chat_headers(account))

    tool_events = [p for name, p in decoded_events(response.content) if name == "toolUseEvent"]
    start, *fragments, stop = tool_events
    assert set(start) == {"name", "toolUseId"} and start["toolUseId"].startswith("tooluse_")
    assert len(fragments) >= 3 and all(set(f) == {"input", "name", "toolUseId"} for f in fragments)
    assert stop == {"name": "get_weather", "stop": True, "toolUseId": start["toolUseId"]}
    assert json.loads("".join(f["input"] for f in fragments)) == {"city": "Paris"}


@pytest.mark.parametrize(
    ("marker", "check"),
    [
        ("[[fake:thinking]]", lambda raw: joined_content(raw).startswith("<thinking>")),
        ("[[fake:thinking]]", lambda raw: "</thinking>\n\nEcho: hi" in joined_content(raw)),
        ("[[fake:reasoning]]", lambda raw: any(n == "reasoningContentEvent" for n, _ in decoded_events(raw))),
        (
            '[[fake:bracket:get_weather:{"city":"Paris"}]]',
            lambda raw: '[Called get_weather with args: {"city": "Paris"}]' in joined_content(raw),
        ),
        ("[[fake:truncated_tool:get_weather]]", lambda raw: not any(p.get("stop") for _, p in decoded_events(raw))),
        ("[[fake:duplicate]]", lambda raw: decoded_events(raw)[0] == decoded_events(raw)[1]),
        ("[[fake:long:5]]", lambda raw: joined_content(raw) == "".join(f"word{i} " for i in range(5))),
        (
            "[[fake:exception:ContentLengthExceededException]]",
            lambda raw: decode_frames(raw)[-1][0][":exception-type"] == "ContentLengthExceededException",
        ),
        ("[[fake:random:3]]", lambda raw: joined_content(raw) == "Echo: hi"),
    ],
)
def test_chat_marker_selects_scenario(
    fake_kiro: FakeKiro, account: Account, marker: str, check: Callable[[bytes], bool]
) -> None:
    response = post_chat(fake_kiro, chat_body(account, f"hi {marker}"), chat_headers(account))

    assert response.status_code == 200
    assert check(response.content)


def test_chat_delivery_markers_shape_the_reply(account: Account) -> None:
    markers = "[[fake:slow:2]] [[fake:pause:3]] [[fake:disconnect]] [[fake:corrupt]] [[fake:random:9]]"

    reply = scenarios.reply_for(chat_body(account, f"hi {markers}"))

    assert isinstance(reply, StreamReply)
    assert (reply.first_byte_delay, reply.pause, reply.chunking) == (2.0, (1, 3.0), Chunking.random(9))
    assert reply.disconnect_after_frames == len(reply.events) // 2
    assert reply.corrupt_frame == 1
    assert scenarios.echo_text(f"hi {markers}") == "Echo: hi"


def test_chat_error_marker_answers_http_error(fake_kiro: FakeKiro, account: Account) -> None:
    response = post_chat(fake_kiro, chat_body(account, "hi [[fake:error:429]]"), chat_headers(account))

    assert response.status_code == 429
    assert response.json() == scenarios.HIGH_TRAFFIC


def test_chat_script_is_used_in_order_then_default(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(ErrorReply(500, scenarios.INTERNAL), StreamReply(scenarios.text("scripted")))

    first = post_chat(fake_kiro, chat_body(account), chat_headers(account))
    second = post_chat(fake_kiro, chat_body(account), chat_headers(account))
    third = post_chat(fake_kiro, chat_body(account), chat_headers(account))

    assert (first.status_code, first.json()) == (500, scenarios.INTERNAL)
    assert joined_content(second.content) == "scripted"
    assert joined_content(third.content) == "Echo: hello"


def test_chat_invalid_request_does_not_consume_script(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("kept")))

    rejected = post_chat(fake_kiro, chat_body(account, ""), chat_headers(account))
    accepted = post_chat(fake_kiro, chat_body(account), chat_headers(account))

    assert rejected.status_code == 400
    assert joined_content(accepted.content) == "kept"


def test_fail_next_fires_given_times_before_validation(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.fail_next(CHAT_PATH, 503, scenarios.UNAVAILABLE, times=2)

    statuses = [post_chat(fake_kiro, chat_body(account), {}).status_code for _ in range(2)]
    after = post_chat(fake_kiro, chat_body(account), chat_headers(account))

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
def test_chunking_writes_join_to_the_same_bytes(chunking: Chunking, writes: Callable[[int, int], int] | None) -> None:
    body = StreamReply(MULTIBYTE_REPLY, chunking=Chunking.whole()).body()
    plain = StreamReply(MULTIBYTE_REPLY, chunking=chunking).plan()
    paused = StreamReply(MULTIBYTE_REPLY, chunking=chunking, pause=(2, 0.5), chunk_interval=0.001).plan()

    assert all(isinstance(step, bytes) for step in plain)
    assert b"".join(step for step in plain if isinstance(step, bytes)) == body
    assert b"".join(step for step in paused if isinstance(step, bytes)) == body
    assert paused.count(0.5) == 1
    if writes is not None:
        assert len(plain) == writes(len(MULTIBYTE_REPLY), len(body))


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
    reply = StreamReply(scenarios.text(MULTIBYTE), chunking=Chunking.one_byte(), chunk_interval=0.0005)
    fake_kiro.script(reply)

    with httpx.stream(
        "POST", fake_kiro.base_url + CHAT_PATH, json=chat_body(account), headers=chat_headers(account)
    ) as r:
        chunks = list(r.iter_raw())

    assert b"".join(chunks) == reply.body()
    assert len(chunks) > 1
    assert joined_content(b"".join(chunks)) == MULTIBYTE


def test_stream_corrupt_frame_fails_crc_check(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("a", "b", "c"), corrupt_frame=1))

    response = post_chat(fake_kiro, chat_body(account), chat_headers(account))

    buffer = EventStreamBuffer()
    buffer.add_data(response.content)
    assert next(buffer).payload == b'{"content":"a"}'
    with pytest.raises(ChecksumMismatch):
        next(buffer)


def test_stream_disconnect_drops_connection_after_frames(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("a", "b", "c"), disconnect_after_frames=2))
    received = b""

    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream(
            "POST", fake_kiro.base_url + CHAT_PATH, json=chat_body(account), headers=chat_headers(account)
        ) as r:
            for chunk in r.iter_raw():
                received += chunk

    assert joined_content(received) == "ab"


def test_stream_raw_tail_follows_the_frames(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("a"), raw_tail=b"\x00\x00\x00\x40\x00"))

    response = post_chat(fake_kiro, chat_body(account), chat_headers(account))

    assert response.content.endswith(b"\x00\x00\x00\x40\x00")
    assert joined_content(response.content) == "a"


def test_stream_pause_stalls_after_the_given_frame(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("first", "second"), pause=(1, 5.0)))
    received = b""

    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream(
            "POST",
            fake_kiro.base_url + CHAT_PATH,
            json=chat_body(account),
            headers=chat_headers(account),
            timeout=0.5,
        ) as r:
            for chunk in r.iter_raw():
                received += chunk

    assert joined_content(received) == "first"


def test_stream_first_byte_delay_holds_back_the_status_line(fake_kiro: FakeKiro, account: Account) -> None:
    fake_kiro.script(StreamReply(scenarios.text("late"), first_byte_delay=5.0))

    with pytest.raises(httpx.ReadTimeout):
        post_chat(fake_kiro, chat_body(account), chat_headers(account), timeout=0.5)


def test_server_sets_tcp_nodelay_on_connections(fake_kiro: FakeKiro, account: Account) -> None:
    post_chat(fake_kiro, chat_body(account), chat_headers(account))

    assert fake_kiro.tcp_nodelay and all(fake_kiro.tcp_nodelay)


# ---- refresh -------------------------------------------------------------------------------------------


def test_refresh_social_rotates_tokens(fake_kiro: FakeKiro, account: Account) -> None:
    old_refresh = account.refresh_token
    fake_kiro.accounts.expire_access_tokens(account)
    expired = post_chat(fake_kiro, chat_body(account), chat_headers(account))

    refreshed = httpx.post(fake_kiro.base_url + "/refreshToken", json={"refreshToken": old_refresh})
    tokens = refreshed.json()
    retried = post_chat(
        fake_kiro, chat_body(account), {**chat_headers(account), "Authorization": "Bearer " + tokens["accessToken"]}
    )
    replayed = httpx.post(fake_kiro.base_url + "/refreshToken", json={"refreshToken": old_refresh})

    assert expired.status_code == 403
    assert refreshed.status_code == 200
    assert set(tokens) == {"accessToken", "refreshToken", "expiresIn", "profileArn"}
    assert tokens["refreshToken"] != old_refresh and tokens["expiresIn"] == 3600
    assert tokens["profileArn"] == account.profile_arn
    assert retried.status_code == 200
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")
    assert (fake_kiro.accounts.refresh_count, fake_kiro.refresh_count) == (1, 2)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({}, None),
        ({"clientSecret": "wrong"}, "invalid_client"),
        ({"clientId": "unknown"}, "invalid_client"),
        ({"refreshToken": "aorWRONG"}, "invalid_grant"),
        ({"grantType": "authorization_code"}, "unsupported_grant_type"),
        ({"refreshToken": None}, "invalid_request"),
    ],
)
def test_refresh_oidc_checks_client_and_grant(fake_kiro: FakeKiro, change: dict[str, Any], error: str | None) -> None:
    account = fake_kiro.accounts.add_idc()
    body = {
        "clientId": account.client_id,
        "clientSecret": account.client_secret,
        "refreshToken": account.refresh_token,
        "grantType": "refresh_token",
    } | change

    response = httpx.post(fake_kiro.base_url + "/token", json=body)

    if error is None:
        assert response.status_code == 200
        assert set(response.json()) == {"accessToken", "refreshToken", "expiresIn", "tokenType"}
        assert response.json()["tokenType"] == "Bearer"
        assert fake_kiro.accounts.by_access_token(response.json()["accessToken"]) is account
    else:
        assert (response.status_code, response.json()["error"]) == (400, error)
        assert (fake_kiro.accounts.refresh_count, fake_kiro.refresh_count) == (0, 1)


def test_refresh_oidc_refuses_form_encoding(fake_kiro: FakeKiro) -> None:
    account = fake_kiro.accounts.add_idc()
    form = {
        "client_id": account.client_id,
        "client_secret": account.client_secret,
        "refresh_token": account.refresh_token,
        "grant_type": "refresh_token",
    }

    response = httpx.post(fake_kiro.base_url + "/token", data=form)

    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_refresh_external_idp_is_form_encoded_snake_case(fake_kiro: FakeKiro) -> None:
    account = fake_kiro.accounts.add_external_idp()
    form = {"grant_type": "refresh_token", "client_id": account.client_id, "refresh_token": account.refresh_token}

    response = httpx.post(account.token_endpoint, data=form)

    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "refresh_token", "expires_in", "token_type"}


# ---- management host -----------------------------------------------------------------------------------


def test_list_models_pages_through_next_token(fake_kiro: FakeKiro, account: Account) -> None:
    models: list[dict[str, Any]] = []
    params = {"origin": "AI_EDITOR", "profileArn": account.profile_arn}
    while True:
        page = httpx.get(
            fake_kiro.base_url + "/ListAvailableModels", params=params, headers=management_headers(account)
        ).json()
        models += page["models"]
        if "nextToken" not in page:
            break
        params["nextToken"] = page["nextToken"]

    by_id = {m["modelId"]: m for m in models}
    assert {"auto", "claude-sonnet-4", "claude-sonnet-4.5", "claude-haiku-4.5", "claude-opus-4.6"} <= set(by_id)
    assert "additionalModelRequestFieldsSchema" in by_id["claude-opus-4.6"]
    assert "additionalModelRequestFieldsSchema" not in by_id["claude-sonnet-4.5"]
    assert by_id["claude-sonnet-4.5"]["tokenLimits"]["maxInputTokens"] == 200_000
    assert len(fake_kiro.requests) > 1


@pytest.mark.parametrize(
    ("params", "auth", "status", "body"),
    [
        ({"origin": "AI_EDITOR"}, False, 403, BAD_BEARER),
        ({}, True, 400, IMPROPER),
        ({"origin": "AI_EDITOR", "profileArn": None}, True, 400, NO_PROFILE),
        ({"origin": "AI_EDITOR", "nextToken": "bogus"}, True, 400, IMPROPER),
    ],
)
def test_list_models_rejects_bad_calls(
    fake_kiro: FakeKiro, account: Account, params: dict[str, Any], auth: bool, status: int, body: dict[str, Any]
) -> None:
    query = {"profileArn": account.profile_arn} | params
    headers = management_headers(account) if auth else {"User-Agent": "KiroIDE-0.11.107-x"}

    response = httpx.get(
        fake_kiro.base_url + "/ListAvailableModels", params={k: v for k, v in query.items() if v}, headers=headers
    )

    assert (response.status_code, response.json()) == (status, body)


def test_usage_limits_has_section7_shape(fake_kiro: FakeKiro, account: Account) -> None:
    params = {
        "origin": "AI_EDITOR",
        "resourceType": "AGENTIC_REQUEST",
        "isEmailRequired": "true",
        "profileArn": account.profile_arn,
    }

    body = httpx.get(fake_kiro.base_url + "/getUsageLimits", params=params, headers=management_headers(account)).json()

    breakdown = body["usageBreakdownList"][0]
    assert body["subscriptionInfo"]["subscriptionTitle"] == "KIRO FREE"
    assert (breakdown["usageLimitWithPrecision"], breakdown["currentUsageWithPrecision"]) == (50.0, 12.5)
    assert breakdown["freeTrialInfo"]["freeTrialStatus"] == "ACTIVE"
    assert isinstance(breakdown["nextDateReset"], float)
    assert body["userInfo"]["email"] == account.email


def test_list_profiles_returns_the_account_arn(fake_kiro: FakeKiro) -> None:
    account = fake_kiro.accounts.add_idc()

    response = httpx.post(fake_kiro.base_url + "/ListAvailableProfiles", json={}, headers=management_headers(account))

    assert response.json()["profiles"][0]["arn"] == account.profile_arn


# ---- recording, reset, files, fixtures -----------------------------------------------------------------


def test_requests_are_recorded_including_unknown_paths(fake_kiro: FakeKiro, account: Account) -> None:
    post_chat(fake_kiro, chat_body(account, "recorded"), chat_headers(account))
    unknown = httpx.post(fake_kiro.base_url + "/", params={"a": "1"}, content=b"xyz")

    chat, other = fake_kiro.requests
    assert (chat.method, chat.path, chat.headers["x-amz-target"]) == (
        "POST",
        CHAT_PATH,
        chat_headers(account)["x-amz-target"],
    )
    assert chat.json["conversationState"]["currentMessage"]["userInputMessage"]["content"] == "recorded"
    assert chat.body_size > 100
    assert fake_kiro.chat_requests() == [chat]
    assert unknown.status_code == 404
    assert (other.path, dict(other.query), other.json, other.body_size) == ("/", {"a": "1"}, None, 3)


def test_reset_forgets_requests_scripts_accounts_and_limits(fake_kiro: FakeKiro, account: Account) -> None:
    post_chat(fake_kiro, chat_body(account), chat_headers(account))
    fake_kiro.script(ErrorReply(500, scenarios.INTERNAL))
    fake_kiro.fail_next("/token", 500, scenarios.INTERNAL)
    fake_kiro.limits = Limits(max_body_bytes=1)

    fake_kiro.reset()
    fresh = fake_kiro.accounts.add_social()
    response = post_chat(fake_kiro, chat_body(fresh), chat_headers(fresh))

    assert response.status_code == 200
    assert fake_kiro.accounts.by_access_token(account.access_token) is None
    assert len(fake_kiro.requests) == 1
    assert httpx.post(fake_kiro.base_url + "/token", json={}).status_code == 400


EXPIRY_PATTERNS = {
    "js": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
    "python": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$",
    "nanos": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$",
}


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        ("social", {"authMethod", "provider", "profileArn"}),
        ("idc", {"authMethod", "provider", "clientIdHash", "region"}),
        ("external_idp", {"authMethod", "provider", "tokenEndpoint", "issuerUrl", "clientId", "scopes"}),
    ],
)
@pytest.mark.parametrize("expires_format", ["js", "python", "nanos"])
def test_write_token_file_uses_kiro_shapes(
    fake_kiro: FakeKiro, isolated_home: Path, kind: str, keys: set[str], expires_format: str
) -> None:
    account = {"social": fake_kiro.accounts.add_social, "idc": fake_kiro.accounts.add_idc}.get(
        kind, fake_kiro.accounts.add_external_idp
    )()

    path = write_token_file(isolated_home, account, expires_format=expires_format)  # type: ignore[arg-type]

    text = path.read_text()
    data = json.loads(text)
    assert path == isolated_home / ".aws" / "sso" / "cache" / "kiro-auth-token.json" == token_file_path(isolated_home)
    assert text.startswith('{\n  "accessToken"')
    assert set(data) == {"accessToken", "refreshToken", "expiresAt"} | keys
    assert re.match(EXPIRY_PATTERNS[expires_format], data["expiresAt"])
    assert data["accessToken"] == account.access_token


def test_write_client_registration_names_file_by_client_id_hash(fake_kiro: FakeKiro, isolated_home: Path) -> None:
    account = fake_kiro.accounts.add_builder_id()

    path = write_client_registration(isolated_home, account)

    # Kiro hashes the JSON text exactly as JS stringifies it: no spaces (kiro-protocol.md §1.3).
    kiro_rule = hashlib.sha1(b'{"startUrl":"https://view.awsapps.com/start"}').hexdigest()
    assert account.client_id_hash == client_id_hash("https://view.awsapps.com/start") == kiro_rule
    assert path.name == account.client_id_hash + ".json"
    assert set(json.loads(path.read_text())) == {"clientId", "clientSecret", "expiresAt"}


@pytest.mark.skipif(sys.platform != "linux", reason="profile_file_path writes Kiro's Linux location")
def test_write_profile_file_lands_where_ki2api_looks(fake_kiro: FakeKiro, isolated_home: Path) -> None:
    account = fake_kiro.accounts.add_idc()

    path = write_profile_file(isolated_home, account)

    assert path == profile_file_path(isolated_home) == paths.kiro_profile_file()
    assert json.loads(path.read_text()) == {"arn": account.profile_arn, "name": "KiroProfile"}


def test_kiro_env_points_every_url_at_the_fake(kiro_env: KiroEnv) -> None:
    token = json.loads(kiro_env.token_file.read_text())

    assert all(os.environ[name] == kiro_env.fake.base_url for name in KIRO_URL_VARIABLES)
    assert kiro_env.token_file == paths.default_token_file()
    assert token["profileArn"] == kiro_env.account.profile_arn
    assert kiro_env.fake.accounts.by_access_token(token["accessToken"]) is kiro_env.account

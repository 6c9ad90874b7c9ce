"""Kiro's files on disk: every token shape and expiresAt form, retries on half-written files, write-back."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ki2api_tray.kiro.token_file import (
    TokenFileError,
    TokenRecord,
    format_js_iso,
    parse_timestamp,
    read_profile_arn,
    read_registration,
    read_token_file,
    token_from_environment,
    token_from_json,
    write_back,
    write_json_atomically,
)

UTC = timezone.utc
MOMENT = datetime(2025, 12, 31, 2, 32, 45, 144000, tzinfo=UTC)


@pytest.fixture
def token_path(isolated_home: Path) -> Path:
    path = isolated_home / ".aws" / "sso" / "cache" / "kiro-auth-token.json"
    path.parent.mkdir(parents=True)
    return path


def social_token(**extra: Any) -> dict[str, Any]:
    return {
        "accessToken": "aoa-access-1",
        "refreshToken": "aor-refresh-1",
        "expiresAt": "2025-12-31T02:32:45.144Z",
        "authMethod": "social",
        "provider": "Github",
        "profileArn": "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABC",
        **extra,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-31T02:32:45.144Z", MOMENT),  # Kiro: JS toISOString()
        ("2025-12-31T02:32:45.144000+00:00", MOMENT),  # Python isoformat() (JW write-back)
        ("2025-12-31T02:32:45.144000123Z", MOMENT),  # RFC 3339 with nanoseconds (kiro-cli)
        ("2025-12-31T02:32:45.144", MOMENT),  # naive: taken as UTC
        ("2025-12-31T10:32:45.144+08:00", MOMENT),
        ("2025-12-31 02:32:45.144z", MOMENT),
        ("2025-12-31T02:32:45Z", MOMENT.replace(microsecond=0)),
        ("2025-12-31T02:32:45.1Z", MOMENT.replace(microsecond=100000)),
        (1767148365.144, MOMENT),  # epoch seconds
        (1767148365144, MOMENT),  # epoch milliseconds
        ("soon", None),
        ("", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_timestamp_formats(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_format_js_iso_matches_kiro() -> None:
    assert format_js_iso(MOMENT) == "2025-12-31T02:32:45.144Z"
    assert format_js_iso(datetime(2025, 1, 2, 11, 0, 0, 999999, tzinfo=UTC).astimezone()) == "2025-01-02T11:00:00.999Z"


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"authMethod": "social", "provider": "Google"}, "social"),
        ({"authMethod": "Social", "provider": "Github"}, "social"),
        ({"authMethod": "IdC", "provider": "BuilderId", "clientIdHash": "abc", "region": "us-east-1"}, "idc"),
        ({"authMethod": "IdC", "provider": "Enterprise"}, "idc"),
        ({"provider": "Internal"}, "idc"),
        ({"authMethod": "idc"}, "idc"),  # kiro.rs writes lower case
        ({"authMethod": "builder-id"}, "idc"),  # AIClient-2-API spelling
        ({"authMethod": "IAM"}, "idc"),
        # Kiro trusts `provider` over `authMethod`.
        ({"authMethod": "IdC", "provider": "Github"}, "social"),
        ({"authMethod": "external_idp", "provider": "ExternalIdp", "tokenEndpoint": "https://idp/t"}, "external_idp"),
        ({"tokenEndpoint": "https://idp.example/token"}, "external_idp"),
        ({"clientIdHash": "abc"}, "idc"),
        ({}, "social"),
    ],
)
def test_token_from_json_auth_kind(fields: dict[str, Any], kind: str, tmp_path: Path) -> None:
    data = {"accessToken": "a", "refreshToken": "r", "expiresAt": "2025-12-31T02:32:45.144Z", **fields}
    assert token_from_json(data, tmp_path / "t.json").auth_kind == kind


def test_token_from_json_reads_every_field(tmp_path: Path) -> None:
    external = {
        "accessToken": "a",
        "refreshToken": "",
        "expiresAt": "2025-12-31T02:32:45.144Z",
        "authMethod": "external_idp",
        "provider": "ExternalIdp",
        "tokenEndpoint": "https://login.example.com/oauth2/token",
        "issuerUrl": "https://login.example.com/",
        "clientId": "client-1",
        "scopes": ["openid", "offline_access"],
    }
    record = token_from_json(external, tmp_path / "t.json")
    assert (record.token_endpoint, record.issuer_url, record.client_id) == (
        "https://login.example.com/oauth2/token",
        "https://login.example.com/",
        "client-1",
    )
    assert record.scopes == ("openid", "offline_access")
    assert record.expires_at == MOMENT
    idc = token_from_json(
        {"accessToken": "a", "refreshToken": "r", "clientIdHash": "h1", "region": "eu-west-1"}, Path()
    )
    assert (idc.client_id_hash, idc.sso_region, idc.profile_arn, idc.expires_at) == ("h1", "eu-west-1", None, None)


@pytest.mark.parametrize(
    "data",
    [[], "text", {}, {"accessToken": "", "refreshToken": ""}, {"accessToken": 5}, {"refreshToken": ["x"]}],
)
def test_token_from_json_rejects_non_tokens(data: object, tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="t.json"):
        token_from_json(data, tmp_path / "t.json")


def test_token_from_environment_only_when_given() -> None:
    assert token_from_environment(None, "") is None
    record = token_from_environment(None, "seed-refresh")
    assert record is not None
    assert (record.auth_kind, record.access_token, record.refresh_token, record.source) == (
        "environment",
        "",
        "seed-refresh",
        None,
    )


def test_read_token_file_missing_is_none(token_path: Path) -> None:
    assert read_token_file(token_path) is None


def test_read_token_file_retries_half_written_file(token_path: Path) -> None:
    whole = json.dumps(social_token(), indent=2)
    token_path.write_text(whole[: len(whole) // 2])
    sleeps: list[float] = []

    def finish_after_second_wait(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 2:
            token_path.write_text(whole)

    record = read_token_file(token_path, sleep=finish_after_second_wait)
    assert record is not None and record.access_token == "aoa-access-1"
    assert sleeps == [0.2, 0.2]


def test_read_token_file_recovers_when_writer_finishes_later(token_path: Path) -> None:
    whole = json.dumps(social_token(), indent=2)
    token_path.write_text("")  # Kiro's writeFileSync truncates first
    finisher = threading.Timer(0.3, token_path.write_text, args=(whole,))
    finisher.start()
    try:
        record = read_token_file(token_path)
    finally:
        finisher.join()
    assert record is not None and record.refresh_token == "aor-refresh-1"


def test_read_token_file_gives_up_without_showing_content(token_path: Path) -> None:
    token_path.write_text('{"accessToken": "aoa-secret-value", "refreshT')
    with pytest.raises(TokenFileError, match="not valid JSON") as caught:
        read_token_file(token_path, sleep=lambda _: None)
    assert "aoa-secret-value" not in str(caught.value)


def test_read_registration_next_to_token(token_path: Path) -> None:
    (token_path.parent / "abc123.json").write_text(
        json.dumps({"clientId": "cid", "clientSecret": "csecret", "expiresAt": "2026-03-01T00:00:00.000Z"})
    )
    registration = read_registration(token_path, "abc123")
    assert registration is not None
    assert (registration.client_id, registration.client_secret) == ("cid", "csecret")
    assert registration.expires_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert "csecret" not in repr(registration)
    assert read_registration(token_path, "missing") is None


@pytest.mark.parametrize("client_id_hash", ["../kiro-auth-token", "a/b", "..", "/etc/passwd", ""])
def test_read_registration_refuses_path_like_hash(token_path: Path, client_id_hash: str) -> None:
    with pytest.raises(TokenFileError, match="plain file name"):
        read_registration(token_path, client_id_hash)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '{"arn": "arn:aws:codewhisperer:eu-central-1:1:profile/X", "name": "x"}',
            "arn:aws:codewhisperer:eu-central-1:1:profile/X",
        ),
        ('{"name": "x"}', None),
        ('{"arn": "not-an-arn"}', None),
        ("{broken", None),
        (None, None),
    ],
)
def test_read_profile_arn(tmp_path: Path, content: str | None, expected: str | None) -> None:
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    assert read_profile_arn(path) == expected


def _refreshed(path: Path, **changes: Any) -> TokenRecord:
    base = token_from_json(json.loads(path.read_text()), path)
    return base.refreshed(changes.get("access", "aoa-access-2"), changes.get("refresh", "aor-refresh-2"), MOMENT, None)


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_write_back_keeps_keys_mode_and_kiro_style(token_path: Path, mode: int) -> None:
    token_path.write_text(json.dumps(social_token(expiresAt="2025-01-01T00:00:00+00:00", extraKey={"keep": 1})))
    os.chmod(token_path, mode)
    result = write_back(_refreshed(token_path), "aor-refresh-1")
    assert result.written
    text = token_path.read_text()
    data = json.loads(text)
    assert data["accessToken"] == "aoa-access-2"
    assert data["refreshToken"] == "aor-refresh-2"
    assert data["expiresAt"] == "2025-12-31T02:32:45.144Z"
    assert data["extraKey"] == {"keep": 1}
    assert data["provider"] == "Github" and data["profileArn"].endswith("profile/ABC")
    assert text == json.dumps(data, indent=2, ensure_ascii=False)  # JSON.stringify(token, null, 2)
    assert stat.S_IMODE(token_path.stat().st_mode) == mode
    assert sorted(p.name for p in token_path.parent.iterdir()) == ["kiro-auth-token.json"]


def test_write_back_skips_when_kiro_changed_the_file(token_path: Path) -> None:
    token_path.write_text(json.dumps(social_token()))
    ours = _refreshed(token_path)
    kiro = social_token(accessToken="aoa-kiro", refreshToken="aor-kiro")
    token_path.write_text(json.dumps(kiro))
    result = write_back(ours, "aor-refresh-1")
    assert not result.written
    assert result.on_disk is not None and result.on_disk.refresh_token == "aor-kiro"
    assert json.loads(token_path.read_text()) == kiro


def test_write_back_leaves_deleted_file_deleted(token_path: Path) -> None:
    token_path.write_text(json.dumps(social_token()))
    ours = _refreshed(token_path)
    token_path.unlink()  # Kiro logged out meanwhile
    assert write_back(ours, "aor-refresh-1").written is False
    assert not token_path.exists()


def test_write_json_atomically_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "folder" / "new.json"
    path.parent.mkdir()
    write_json_atomically(path, {"b": "é", "a": [1]})
    assert path.read_text(encoding="utf-8") == '{\n  "b": "é",\n  "a": [\n    1\n  ]\n}'
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["new.json"]


def test_write_json_atomically_retries_a_briefly_locked_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "folder" / "token.json"
    path.parent.mkdir()
    path.write_text("{}")
    real_replace = os.replace
    calls: list[str] = []

    def locked_twice(source: str, target: Path) -> None:
        calls.append(source)
        if len(calls) <= 2:
            raise PermissionError(13, "The process cannot access the file")  # Windows sharing violation
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", locked_twice)
    write_json_atomically(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert len(calls) == 3


def test_write_json_atomically_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "folder" / "token.json"
    path.parent.mkdir()
    path.write_text('{"old": true}')

    def always_locked(source: str, target: Path) -> None:
        raise PermissionError(13, "The process cannot access the file")

    monkeypatch.setattr(os, "replace", always_locked)
    with pytest.raises(PermissionError):
        write_json_atomically(path, {"new": True})
    assert path.read_text() == '{"old": true}'
    assert [p.name for p in path.parent.iterdir()] == ["token.json"]

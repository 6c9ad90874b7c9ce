"""kiro-cli's login database: read-only, never written (kiro-protocol-2026.md §5).

`data.sqlite3` holds `auth_kv(key, value)` with JSON values in snake_case and `state(key, value)` with the
chosen profile. Without a `-wal` file beside it the database is opened `immutable=1` (a read-only open of a
WAL database would create `-wal` and `-shm`); while kiro-cli runs and they exist, `mode=ro` reads through
them so no committed change is missed. Nothing kiro-cli owns is created or written.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .token_file import ClientRegistration, TokenFileError, TokenRecord, parse_timestamp

# The rows in the order ki2api prefers them when several exist: kiro-cli's own logins before the legacy
# Amazon Q CLI rows it may resurrect (KI #4443). "odic" is the real spelling; KCC also probes "oidc".
TOKEN_KEYS = (
    "kirocli:social:token",
    "kirocli:odic:token",
    "kirocli:oidc:token",
    "kirocli:external-idp:token",
    "codewhisperer:odic:token",
    "codewhisperer:oidc:token",
)
_REGISTRATION_KEYS = {
    "kirocli": ("kirocli:odic:device-registration", "kirocli:oidc:device-registration"),
    "codewhisperer": ("codewhisperer:odic:device-registration", "codewhisperer:oidc:device-registration"),
}
_PROFILE_STATE = "api.codewhisperer.profile"
_BUILDER_ID_HOST = "view.awsapps.com"


@dataclass(frozen=True)
class CliLogins:
    """What the database holds: the chosen login, the keys of all login rows, and the choice's reason."""

    record: TokenRecord | None
    keys: tuple[str, ...]


@contextlib.contextmanager
def _open_read_only(path: Path) -> Iterator[sqlite3.Connection]:
    uri = "file:" + quote(str(path.resolve()).replace("\\", "/"), safe="/:")
    live = path.with_name(path.name + "-wal").exists()
    connection = sqlite3.connect(f"{uri}?{'mode=ro' if live else 'immutable=1'}", uri=True, timeout=2.0)
    try:
        yield connection
    finally:
        connection.close()


def _rows(connection: sqlite3.Connection, table: str) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in connection.execute(f"SELECT key, value FROM {table}")}  # noqa: S608
    except sqlite3.DatabaseError:
        return {}


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
        # `state` values may be JSON-quoted JSON (KCC db.go).
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value
    except (ValueError, TypeError):
        return None


def _text(data: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def read_cli_logins(path: Path, preferred_key: str | None = None) -> CliLogins | None:
    """The login kiro-cli keeps at `path`; None when the database or its login rows do not exist.

    TokenFileError (with the database and row named, never a value) when the chosen row is unusable.
    """
    if not path.is_file():
        return None
    try:
        with _open_read_only(path) as connection:
            auth, state = _rows(connection, "auth_kv"), _rows(connection, "state")
    except sqlite3.DatabaseError as exc:
        raise TokenFileError(f"the kiro-cli database {path} cannot be read ({type(exc).__name__})") from None
    keys = tuple(k for k in TOKEN_KEYS if k in auth)
    if preferred_key:
        if preferred_key not in auth:
            raise TokenFileError(f"the kiro-cli database {path} has no login row {preferred_key!r} (kiro_cli_key)")
        chosen = preferred_key
    elif keys:
        chosen = keys[0]
    else:
        return None
    record = _record(path, chosen, _json(auth[chosen]), auth, _json(state.get(_PROFILE_STATE)))
    return CliLogins(record, keys if chosen in keys else (chosen, *keys))


def _record(path: Path, key: str, data: Any, auth: dict[str, str], profile: Any) -> TokenRecord:
    where = f"the kiro-cli login {key} in {path}"
    if not isinstance(data, dict):
        raise TokenFileError(f"{where} is not a JSON object")
    access = _text(data, "access_token", "accessToken") or ""
    refresh = _text(data, "refresh_token", "refreshToken") or ""
    if not access and not refresh:
        raise TokenFileError(f"{where} has no access token and no refresh token")
    profile_arn = _text(data, "profile_arn", "profileArn")
    if profile_arn is None and isinstance(profile, dict):
        profile_arn = _text(profile, "arn")
    expires_at = parse_timestamp(data.get("expires_at", data.get("expiresAt")))
    common: dict[str, Any] = {
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": expires_at,
        "source": path,
        "origin": "kiro_cli",
        "row_key": key,
        "profile_arn": profile_arn if profile_arn and profile_arn.startswith("arn:") else None,
    }
    if ":social:" in key:
        provider = _text(data, "provider")
        return TokenRecord(auth_kind="social", provider=provider.capitalize() if provider else None, **common)
    if ":external-idp:" in key:
        scopes = data.get("scopes")
        return TokenRecord(
            auth_kind="external_idp",
            provider="ExternalIdp",
            token_endpoint=_text(data, "token_endpoint", "tokenEndpoint"),
            issuer_url=_text(data, "issuer_url", "issuerUrl"),
            client_id=_text(data, "client_id", "clientId"),
            scopes=tuple(scopes.split())
            if isinstance(scopes, str)
            else tuple(s for s in scopes or () if isinstance(s, str)),
            **common,
        )
    start_url = _text(data, "start_url", "startUrl") or ""
    provider = "BuilderId" if _BUILDER_ID_HOST in start_url else ("Enterprise" if start_url else None)
    return TokenRecord(
        auth_kind="idc",
        provider=provider,
        sso_region=_text(data, "region"),
        registration=_registration(path, key, auth),
        **common,
    )


def _registration(path: Path, key: str, auth: dict[str, str]) -> ClientRegistration | None:
    for reg_key in _REGISTRATION_KEYS.get(key.split(":", 1)[0], ()):
        data = _json(auth.get(reg_key))
        if data is None:
            continue
        client_id = _text(data, "client_id", "clientId") if isinstance(data, dict) else None
        secret = _text(data, "client_secret", "clientSecret") if isinstance(data, dict) else None
        if not client_id or not secret:
            raise TokenFileError(f"the kiro-cli device registration {reg_key} in {path} has no client id or secret")
        expiry = data.get("client_secret_expires_at", data.get("expires_at"))
        return ClientRegistration(client_id, secret, parse_timestamp(expiry))
    return None

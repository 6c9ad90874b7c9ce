"""Kiro's files on disk: the token file, the IdC client registration, profile.json, and atomic write-back.

Pure file I/O with no HTTP and no shared state; `tokens.TokenStore` decides when to call it. Blocking
(reads retry with `time.sleep`), so async code calls it through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Kiro writes the token with a plain writeFileSync (kiro-protocol.md §1.6), so a reader can catch it
# empty or half-written; a few short retries ride that out.
READ_ATTEMPTS = 4  # the first read and three retries, 0.2 s apart
READ_RETRY_DELAY = 0.2
REPLACE_ATTEMPTS = 5
REPLACE_RETRY_DELAY = 0.1

# Kiro's reader maps `provider` to the login kind whatever `authMethod` says (KIRO sanitizeToken);
# peers write other spellings of `authMethod` (kiro-protocol.md §1.2). Keys are lower-case, no - or _.
_KIND_BY_PROVIDER = {
    "google": "social",
    "github": "social",
    "enterprise": "idc",
    "builderid": "idc",
    "internal": "idc",
    "externalidp": "external_idp",
}
_KIND_BY_METHOD = {
    "social": "social",
    "idc": "idc",
    "builderid": "idc",
    "iam": "idc",
    "externalidp": "external_idp",
}
_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_FRACTION = re.compile(r"\.(\d+)")

Sleep = Callable[[float], None]


class TokenFileError(Exception):
    """A Kiro file exists but does not hold what it should; the message names the file, never its content."""


@dataclass(frozen=True)
class ClientRegistration:
    """The SSO-OIDC client that Kiro registered for an IdC / Builder ID login (`<clientIdHash>.json`)."""

    client_id: str
    client_secret: str = field(repr=False)
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenRecord:
    """One Kiro login, wherever it came from: `origin` names the source, `source` its file (if any).

    `auth_kind` is how the login refreshes and which hosts take it (kiro-protocol-2026.md §1.1): "social",
    "idc" (Builder ID and IAM Identity Center; `provider` tells them apart), "external_idp", "api_key"
    (a `ksk_` key: the bearer itself, never refreshed) or "environment" (the seed's tokens, refreshed
    like a social login).
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    auth_kind: str
    source: Path | None = None
    origin: str = "token_file"  # "token_file" | "kiro_cli" | "api_key" | "environment"
    provider: str | None = None  # Google, Github, BuilderId, Enterprise, Internal, ExternalIdp
    # kiro-cli keeps the OIDC client registration in its database, not next to a token file.
    registration: ClientRegistration | None = field(default=None, repr=False)
    row_key: str | None = None  # the kiro-cli auth_kv key this login was read from
    profile_arn: str | None = None
    sso_region: str | None = None  # IdC: the SSO-OIDC region, which may differ from the API region
    client_id_hash: str | None = None  # IdC: names the registration file next to the token
    token_endpoint: str | None = None  # external IdP
    issuer_url: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] = ()

    def same_tokens(self, other: TokenRecord | None) -> bool:
        return other is not None and (self.access_token, self.refresh_token) == (
            other.access_token,
            other.refresh_token,
        )

    def refreshed(
        self, access_token: str, refresh_token: str | None, expires_at: datetime, profile_arn: str | None
    ) -> TokenRecord:
        """This login with new tokens; an absent refresh token or profile ARN keeps the old one."""
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token or self.refresh_token,
            expires_at=expires_at,
            profile_arn=profile_arn or self.profile_arn,
        )


@dataclass(frozen=True)
class WriteBackResult:
    """`written`, or why not: `on_disk` is what the file holds now when Kiro changed it meanwhile."""

    written: bool
    on_disk: TokenRecord | None = None


def parse_timestamp(value: object) -> datetime | None:
    """Every `expiresAt` form seen in the wild, as an aware UTC datetime; None when absent or unparseable.

    JS `toISOString()` (`…45.144Z`, Kiro), Python `isoformat()` (`+00:00`), RFC 3339 with nanoseconds
    (kiro-cli), naive (taken as UTC), and epoch seconds or milliseconds.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat takes exactly 3 or 6 fractional digits; nanoseconds have 9.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_js_iso(moment: datetime) -> str:
    """Kiro's own form, JS `toISOString()`: `2025-12-31T02:32:45.144Z`."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond // 1000:03d}Z"


def _squash(value: object) -> str:
    return re.sub(r"[-_\s]", "", value.lower()) if isinstance(value, str) else ""


def auth_kind_of(data: Mapping[str, Any]) -> str:
    """The login kind: `provider` first (as Kiro does), then `authMethod`, then the keys that are present."""
    kind = _KIND_BY_PROVIDER.get(_squash(data.get("provider"))) or _KIND_BY_METHOD.get(_squash(data.get("authMethod")))
    if kind:
        return kind
    if data.get("tokenEndpoint"):
        return "external_idp"
    if data.get("clientIdHash"):
        return "idc"
    return "social"


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def token_from_json(data: object, source: Path) -> TokenRecord:
    """A token record from the parsed token file; TokenFileError when it is not a Kiro token."""
    if not isinstance(data, dict):
        raise TokenFileError(f"{source} does not hold a JSON object")
    access, refresh = data.get("accessToken", ""), data.get("refreshToken", "")
    if not isinstance(access, str) or not isinstance(refresh, str):
        raise TokenFileError(f"{source} has an accessToken or refreshToken that is not text")
    if not access and not refresh:
        raise TokenFileError(f"{source} has no accessToken and no refreshToken")
    scopes = data.get("scopes")
    if isinstance(scopes, str):
        scope_tuple: tuple[str, ...] = tuple(scopes.split())
    elif isinstance(scopes, list):
        scope_tuple = tuple(s for s in scopes if isinstance(s, str))
    else:
        scope_tuple = ()
    provider = data.get("provider")
    return TokenRecord(
        access_token=access,
        refresh_token=refresh,
        expires_at=parse_timestamp(data.get("expiresAt")),
        auth_kind=auth_kind_of(data),
        source=source,
        provider=provider if isinstance(provider, str) and provider else None,
        profile_arn=_optional_str(data, "profileArn"),
        sso_region=_optional_str(data, "region"),
        client_id_hash=_optional_str(data, "clientIdHash"),
        token_endpoint=_optional_str(data, "tokenEndpoint"),
        issuer_url=_optional_str(data, "issuerUrl"),
        client_id=_optional_str(data, "clientId"),
        scopes=scope_tuple,
    )


def token_from_environment(access_token: str | None, refresh_token: str | None) -> TokenRecord | None:
    """The seed's KIRO_ACCESS_TOKEN / KIRO_REFRESH_TOKEN as a login refreshed like a social one, or None."""
    if not access_token and not refresh_token:
        return None
    return TokenRecord(
        access_token or "", refresh_token or "", expires_at=None, auth_kind="environment", origin="environment"
    )


def read_json_object(
    path: Path, *, attempts: int = READ_ATTEMPTS, delay: float = READ_RETRY_DELAY, sleep: Sleep = time.sleep
) -> dict[str, Any] | None:
    """The file's JSON object, None if the file does not exist; retried while it looks half-written."""
    problem = ""
    for attempt in range(attempts):
        if attempt:
            sleep(delay)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            # Windows refuses to share a file Kiro is writing; that passes like a half-written file.
            problem = f"could not be read ({type(exc).__name__})"
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"is not valid JSON (line {exc.lineno}, column {exc.colno})"
            continue
        if isinstance(data, dict):
            return data
        problem = "does not hold a JSON object"
    raise TokenFileError(f"{path} {problem}")


def read_token_file(
    path: Path, *, attempts: int = READ_ATTEMPTS, delay: float = READ_RETRY_DELAY, sleep: Sleep = time.sleep
) -> TokenRecord | None:
    """The login in Kiro's token file; None when there is no file, TokenFileError when it stays unusable."""
    problem: TokenFileError | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(delay)
        try:
            data = read_json_object(path, attempts=1)
            return None if data is None else token_from_json(data, path)
        except TokenFileError as exc:
            problem = exc
    assert problem is not None
    raise problem


def registration_path(token_file: Path, client_id_hash: str) -> Path:
    # The hash comes from the token file; refuse anything that could name a file outside Kiro's folder.
    if not _SAFE_FILE_NAME.fullmatch(client_id_hash) or ".." in client_id_hash:
        raise TokenFileError(f"{token_file} has a clientIdHash that is not a plain file name")
    return token_file.parent / f"{client_id_hash}.json"


def read_registration(token_file: Path, client_id_hash: str) -> ClientRegistration | None:
    """The IdC client registration next to the token file; None when the file does not exist."""
    path = registration_path(token_file, client_id_hash)
    data = read_json_object(path)
    if data is None:
        return None
    client_id, secret = data.get("clientId"), data.get("clientSecret")
    if not isinstance(client_id, str) or not client_id or not isinstance(secret, str) or not secret:
        raise TokenFileError(f"{path} has no clientId or clientSecret")
    return ClientRegistration(client_id, secret, parse_timestamp(data.get("expiresAt")))


def read_profile_arn(profile_file: Path) -> str | None:
    """The ARN from Kiro's profile.json (`{"arn", "name"}`), or None when it is absent or unusable."""
    try:
        data = read_json_object(profile_file, attempts=2)
    except TokenFileError as exc:
        log.warning("ignoring Kiro's profile file: %s", exc)
        return None
    arn = None if data is None else data.get("arn")
    return arn if isinstance(arn, str) and arn.startswith("arn:") else None


def write_back(record: TokenRecord, expected_refresh_token: str) -> WriteBackResult:
    """Store a refreshed login in its token file, like Kiro would, if the file still holds our old login.

    Compare-and-set, as Kiro itself does (kiro-protocol.md §1.6): write only when the refreshToken on disk
    is still `expected_refresh_token`. Every other key is kept; the file is replaced atomically with the
    same permission bits. A missing or unreadable file is left alone. OSError when the write fails.
    """
    if record.source is None or record.origin != "token_file":
        # kiro-cli's database is never written (kiro-protocol-2026.md §5); keys and seeds have no file.
        raise ValueError("only a login read from Kiro's token file can be written back")
    path = record.source
    try:
        current = read_json_object(path)
    except TokenFileError:
        return WriteBackResult(written=False)
    if current is None:
        return WriteBackResult(written=False)
    if current.get("refreshToken") != expected_refresh_token:
        try:
            return WriteBackResult(written=False, on_disk=token_from_json(current, path))
        except TokenFileError:
            return WriteBackResult(written=False)
    updated = dict(current)
    updated["accessToken"] = record.access_token
    updated["refreshToken"] = record.refresh_token
    if record.expires_at is not None:
        updated["expiresAt"] = format_js_iso(record.expires_at)
    if record.auth_kind == "social" and record.profile_arn:
        updated["profileArn"] = record.profile_arn
    write_json_atomically(path, updated)
    return WriteBackResult(written=True)


def write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Replace `path` with `data` as 2-space JSON (Kiro's JSON.stringify style) via a temp file + rename."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o600
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(json.dumps(data, indent=2, ensure_ascii=False))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        _replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _sync_directory(path.parent)


def _replace(source: str, target: Path) -> None:
    # Windows refuses to replace a file another process (Kiro's watchFile, an editor) has open; that
    # passes in a moment, and giving up would leave the rotated refresh token only in our memory.
    for attempt in range(REPLACE_ATTEMPTS):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == REPLACE_ATTEMPTS - 1:
                raise
            time.sleep(REPLACE_RETRY_DELAY)


def _sync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open a directory for fsync.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

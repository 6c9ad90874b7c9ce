"""Logins the fake Kiro knows (tokens, client registrations, quota) and Kiro's files for them on disk.

Refreshes rotate the refresh token like the real auth services (kiro-protocol.md §2), so a client that
does not write the new one back is caught on its next refresh. File shapes follow §1.2-§1.4.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

AccountKind = Literal["social", "idc", "external_idp", "api_key"]
ExpiresFormat = Literal["js", "python", "nanos"]

BUILDER_ID_START_URL = "https://view.awsapps.com/start"
ENTERPRISE_START_URL = "https://d-9067example.awsapps.com/start"
# kiro-protocol.md §1.4: the placeholder ARN some peers send for Builder ID; it belongs to no account.
BUILDER_ID_PLACEHOLDER_ARN = "arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX"
_serial = itertools.count(1)


@dataclass
class Account:
    """One login as the backend sees it. Mutable on purpose: refreshes rotate its tokens.

    Only `Accounts` changes the token fields, under its lock; tests may set the quota fields directly.
    """

    kind: AccountKind
    provider: str
    access_token: str
    refresh_token: str
    profile_arn: str
    region: str = "us-east-1"
    # IdC (§1.3) and external IdP (§2.3) only.
    client_id: str = ""
    client_secret: str = ""
    client_id_hash: str = ""
    start_url: str = ""
    token_endpoint: str = ""
    issuer_url: str = ""
    valid_access_tokens: set[str] = field(default_factory=set)
    refreshes: int = 0
    # Quota shown by getUsageLimits (§7).
    subscription_title: str = "KIRO FREE"
    usage_limit: float = 50.0
    current_usage: float = 12.5
    trial_limit: float = 500.0
    trial_usage: float = 100.25
    trial_status: str = "ACTIVE"
    email: str = "dev@example.com"
    user_id: str = "fake-user"
    # Account signals (kiro-protocol-2026.md §7): set by a test, answered on every API call of this login.
    suspended: bool = False
    quota_reason: str = ""  # "MONTHLY_REQUEST_COUNT" / "OVERAGE_REQUEST_LIMIT_EXCEEDED": every call is a 402
    suspicious: bool = False  # every call is the "suspicious activity" 429
    # §1.4: the catalog is per account/profile; None offers every model of catalog.MODELS.
    models: tuple[str, ...] | None = None

    @property
    def builder_id(self) -> bool:
        return self.kind == "idc" and self.provider == "BuilderId"

    @property
    def profile_region(self) -> str:
        """The region the profile (and so the API) lives in: the ARN's 4th field; us-east-1 without one."""
        return self.profile_arn.split(":")[3] if self.profile_arn else "us-east-1"


def _access_token() -> str:
    # Kiro's access tokens start with "aoa" and its refresh tokens with "aor"; long and random so a test
    # can grep logs for them.
    return "aoa" + secrets.token_urlsafe(48)


def _refresh_token() -> str:
    return "aor" + secrets.token_urlsafe(48)


def _profile_arn(region: str, n: int) -> str:
    return f"arn:aws:codewhisperer:{region}:{100000000000 + n}:profile/FAKE{n:08d}"


def api_key_value() -> str:
    """A Kiro API key as the portal issues it: `ksk_` and a long random tail (kiro-protocol-2026.md §3)."""
    return "ksk_" + secrets.token_urlsafe(40)


def client_id_hash(start_url: str) -> str:
    """Kiro's name for the registration file: SHA-1 of JSON `{"startUrl": ...}` as JS stringifies it (§1.3)."""
    return hashlib.sha1(json.dumps({"startUrl": start_url}, separators=(",", ":")).encode()).hexdigest()


class Accounts:
    """The fake's user database. Thread-safe: the server thread refreshes while tests read."""

    def __init__(self, base_url: str = "") -> None:
        self._base_url = base_url
        self._lock = threading.Lock()
        self._accounts: list[Account] = []
        self.social_refreshes = 0
        self.oidc_refreshes = 0
        self.external_refreshes = 0

    @property
    def refresh_count(self) -> int:
        """Successful refreshes of any kind; single-flight tests expect exactly one."""
        return self.social_refreshes + self.oidc_refreshes + self.external_refreshes

    def all(self) -> list[Account]:
        with self._lock:
            return list(self._accounts)

    def clear(self) -> None:
        with self._lock:
            self._accounts.clear()
            self.social_refreshes = self.oidc_refreshes = self.external_refreshes = 0

    def _add(self, account: Account) -> Account:
        account.valid_access_tokens.add(account.access_token)
        with self._lock:
            self._accounts.append(account)
        return account

    def add_social(self, provider: str = "Google", region: str = "us-east-1") -> Account:
        """A Google/GitHub login: its token file carries the profileArn (§1.2)."""
        n = next(_serial)
        return self._add(
            Account("social", provider, _access_token(), _refresh_token(), _profile_arn(region, n), region)
        )

    def add_idc(
        self,
        provider: str = "Enterprise",
        region: str = "us-east-1",
        start_url: str = ENTERPRISE_START_URL,
        sso_region: str | None = None,
    ) -> Account:
        """An IAM Identity Center (Enterprise) login: refreshes through SSO-OIDC with a client registration (§2.2).

        Its token file has no profileArn; the profile lives in `region` (a profile region) and is found via
        profile.json or ListAvailableProfiles (§1.4, 2026 §2). `sso_region` is the token's own region.
        """
        n = next(_serial)
        arn = "" if provider == "BuilderId" else _profile_arn(region, n)
        account = Account("idc", provider, _access_token(), _refresh_token(), arn, sso_region or region)
        account.client_id = f"fakeclient{n:06d}" + secrets.token_hex(8)
        account.client_secret = "fakesecret" + secrets.token_urlsafe(32)
        account.start_url = start_url
        account.client_id_hash = client_id_hash(start_url)
        return self._add(account)

    def add_builder_id(self) -> Account:
        """An AWS Builder ID login: IdC-shaped, but with no Kiro profile at all (2026 §2.2: not possible)."""
        return self.add_idc("BuilderId", "us-east-1", BUILDER_ID_START_URL)

    def add_api_key(self) -> Account:
        """A Kiro API key (`ksk_…`): used as the bearer itself, never refreshed, no profile ARN (2026 §3)."""
        key = api_key_value()
        return self._add(Account("api_key", "ApiKey", key, "", "", "us-east-1"))

    def add_external_idp(self, region: str = "us-east-1") -> Account:
        """An enterprise IdP login: form-encoded OAuth refresh at `tokenEndpoint`, `TokenType` header (§2.3)."""
        n = next(_serial)
        account = Account("external_idp", "ExternalIdp", _access_token(), _refresh_token(), _profile_arn(region, n))
        account.region = region
        account.client_id = f"fake-idp-client-{n}"
        account.issuer_url = self._base_url
        account.token_endpoint = f"{self._base_url}/oauth2/token"
        return self._add(account)

    def by_access_token(self, token: str) -> Account | None:
        with self._lock:
            return next((a for a in self._accounts if token in a.valid_access_tokens), None)

    def expire_access_tokens(self, account: Account) -> None:
        """Make every access token issued so far invalid, as if its hour ran out; only a refresh helps."""
        with self._lock:
            account.valid_access_tokens.clear()

    def _rotate(self, account: Account) -> Account:
        account.access_token = _access_token()
        account.refresh_token = _refresh_token()
        account.valid_access_tokens.add(account.access_token)
        account.refreshes += 1
        return account

    def refresh_social(self, refresh_token: str) -> Account | None:
        """Kiro auth `/refreshToken` (§2.1): rotates both tokens; the old refresh token dies."""
        with self._lock:
            for account in self._accounts:
                if account.kind == "social" and secrets.compare_digest(account.refresh_token, refresh_token):
                    self.social_refreshes += 1
                    return self._rotate(account)
        return None

    def refresh_oidc(self, client_id: str, client_secret: str, refresh_token: str) -> Account | str:
        """SSO-OIDC CreateToken (§2.2). Returns the account or the OAuth error code."""
        with self._lock:
            client = [a for a in self._accounts if a.kind == "idc" and a.client_id == client_id]
            if not client or not any(secrets.compare_digest(a.client_secret, client_secret) for a in client):
                return "invalid_client"
            for account in client:
                if secrets.compare_digest(account.refresh_token, refresh_token):
                    self.oidc_refreshes += 1
                    return self._rotate(account)
        return "invalid_grant"

    def refresh_external(self, client_id: str, refresh_token: str) -> Account | None:
        """External IdP token endpoint (§2.3)."""
        with self._lock:
            for account in self._accounts:
                if (
                    account.kind == "external_idp"
                    and account.client_id == client_id
                    and secrets.compare_digest(account.refresh_token, refresh_token)
                ):
                    self.external_refreshes += 1
                    return self._rotate(account)
        return None


# ---- Kiro's files on disk -------------------------------------------------------------------------------


def format_expiry(when: dt.datetime, style: ExpiresFormat) -> str:
    """`expiresAt` as each writer spells it (§1.2): Kiro's JS ISO, Python isoformat, kiro-cli nanoseconds."""
    when = when.astimezone(dt.timezone.utc)
    if style == "js":
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if style == "python":
        return when.isoformat()
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}789Z"


def cache_dir(home: Path) -> Path:
    return home / ".aws" / "sso" / "cache"


def token_file_path(home: Path) -> Path:
    return cache_dir(home) / "kiro-auth-token.json"


def profile_file_path(home: Path) -> Path:
    """The Linux location of Kiro's `profile.json` (§1.4), with XDG_CONFIG_HOME at its default."""
    return home / ".config" / "Kiro" / "User" / "globalStorage" / "kiro.kiroagent" / "profile.json"


def token_file_json(
    account: Account,
    kind: AccountKind | None = None,
    expires_in: float = 3600,
    expires_format: ExpiresFormat = "js",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The token object Kiro writes for this login kind (§1.2); `expires_in` < 0 gives an expired one."""
    kind = kind or account.kind
    now = now or dt.datetime.now(dt.timezone.utc)
    data: dict[str, Any] = {
        "accessToken": account.access_token,
        "refreshToken": account.refresh_token,
        "expiresAt": format_expiry(now + dt.timedelta(seconds=expires_in), expires_format),
    }
    if kind == "social":
        data |= {"authMethod": "social", "provider": account.provider, "profileArn": account.profile_arn}
    elif kind == "idc":
        data |= {
            "authMethod": "IdC",
            "provider": account.provider,
            "clientIdHash": account.client_id_hash,
            "region": account.region,
        }
    else:
        data |= {
            "authMethod": "external_idp",
            "provider": "ExternalIdp",
            "tokenEndpoint": account.token_endpoint,
            "issuerUrl": account.issuer_url,
            "clientId": account.client_id,
            "scopes": ["openid", "offline_access"],
        }
    return data


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Kiro writes pretty-printed JSON with a 2-space indent (§1.2).
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def write_token_file(
    home: Path,
    account: Account,
    kind: AccountKind | None = None,
    expires_in: float = 3600,
    expires_format: ExpiresFormat = "js",
) -> Path:
    """Write `~/.aws/sso/cache/kiro-auth-token.json` under `home` as Kiro would; returns its path."""
    return _write_json(token_file_path(home), token_file_json(account, kind, expires_in, expires_format))


def write_client_registration(home: Path, account: Account, expires_in: float = 90 * 86400) -> Path:
    """Write the IdC client registration `~/.aws/sso/cache/<clientIdHash>.json` (§1.3)."""
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=expires_in)
    data = {
        "clientId": account.client_id,
        "clientSecret": account.client_secret,
        "expiresAt": format_expiry(expires, "js"),
    }
    return _write_json(cache_dir(home) / f"{account.client_id_hash}.json", data)


def write_profile_file(home: Path, account: Account, name: str = "KiroProfile") -> Path:
    """Write Kiro's `profile.json` `{arn, name}` at the Linux path under `home` (§1.4)."""
    return _write_json(profile_file_path(home), {"arn": account.profile_arn, "name": name})

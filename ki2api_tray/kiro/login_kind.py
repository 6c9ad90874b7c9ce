"""What kind of Kiro login a record is, in words a person knows, and what that kind means on the wire.

Pure facts from kiro-protocol-2026.md §1.1 and §3-§4: which logins the runtime host refuses, which extra
header each kind sends, which ones carry or need a profile ARN. `TokenStore`, `KiroClient`, the status
lines and `ki2api-tray status` all ask here, so they never disagree about a login.
"""

from __future__ import annotations

import re

from .token_file import TokenRecord

# §1.1: the header that makes Kiro treat the bearer as this kind of token; never sent for other kinds.
_TOKEN_TYPE = {"external_idp": ("TokenType", "EXTERNAL_IDP"), "api_key": ("tokentype", "API_KEY")}
_SOCIAL_NAMES = {"google": "Google", "github": "GitHub"}
_ORIGIN_NAMES = {
    "token_file": "the Kiro token file",
    "kiro_cli": "kiro-cli",
    "api_key": "KIRO_API_KEY",
    "environment": "KIRO_ACCESS_TOKEN",
}
_ACCOUNT_ID = re.compile(r"^(arn:[^:]*:[^:]*:[^:]*:)(\d{12})(:.*)$")


def is_builder_id(record: TokenRecord) -> bool:
    return record.auth_kind == "idc" and (record.provider or "").lower() == "builderid"


def is_enterprise(record: TokenRecord) -> bool:
    """IAM Identity Center proper: an IdC login whose provider is not Builder ID (or unknown)."""
    return record.auth_kind == "idc" and (record.provider or "").lower() in ("enterprise", "internal")


def uses_runtime_host(auth_kind: str) -> bool:
    """Only social logins (and the seed's tokens, refreshed like them) may use runtime (§1.1, §10)."""
    return auth_kind in ("social", "environment")


def can_refresh(record: TokenRecord) -> bool:
    """A refresh can only help a login that has a refresh token; an API key has none by design (§3)."""
    return record.auth_kind != "api_key" and bool(record.refresh_token)


def token_type_headers(auth_kind: str) -> dict[str, str]:
    pair = _TOKEN_TYPE.get(auth_kind)
    return {pair[0]: pair[1]} if pair else {}


def kind_label(record: TokenRecord) -> str:
    """ "Builder ID", "IAM Identity Center", "Google", "external identity provider", "Kiro API key" ..."""
    if record.auth_kind == "api_key":
        return "Kiro API key"
    if record.auth_kind == "external_idp":
        return "external identity provider"
    if record.auth_kind == "environment":
        return "tokens from the environment"
    if record.auth_kind == "idc":
        if is_builder_id(record):
            return "Builder ID"
        return "IAM Identity Center" if is_enterprise(record) else "Builder ID or IAM Identity Center"
    return _SOCIAL_NAMES.get((record.provider or "").lower(), "Google or GitHub")


def origin_label(origin: str) -> str:
    return _ORIGIN_NAMES.get(origin, origin)


def login_label(record: TokenRecord) -> str:
    """ "Builder ID, from kiro-cli": the kind and where it came from, as the tray and status page say it."""
    return f"{kind_label(record)}, from {origin_label(record.origin)}"


def mask_arn(arn: str | None) -> str:
    """A profile ARN with its account id cut to the last 4 digits, for logs and the status page."""
    if not arn:
        return ""
    match = _ACCOUNT_ID.match(arn)
    if match is None:
        return arn[:24] + "…" if len(arn) > 24 else arn
    return f"{match.group(1)}…{match.group(2)[-4:]}{match.group(3)}"


def arn_region(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None

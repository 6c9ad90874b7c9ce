"""What one API call needs from a login (`Credentials`), which account a login belongs to, and the client
registration an IAM Identity Center / Builder ID refresh needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..core.errors import KiroLoginRequired
from .login_kind import token_type_headers
from .token_file import ClientRegistration, TokenFileError, TokenRecord, read_registration, registration_path


@dataclass(frozen=True)
class Credentials:
    """What one API call needs: the bearer token, the profile ARN (None: send none) and the API region."""

    access_token: str = field(repr=False)
    profile_arn: str | None
    region: str  # API region: settings.region_for(profile_arn)
    auth_kind: str  # "social" | "idc" | "external_idp" | "api_key" | "environment"
    expires_at: datetime | None
    label: str = ""  # "Builder ID, from kiro-cli"
    arn_from: str = ""  # "login", "override", "profile.json", "ListAvailableProfiles", "" (none)
    identity: tuple[str, ...] = ()  # which login this is, for per-login caches (model catalog)

    @property
    def extra_headers(self) -> dict[str, str]:
        # 2026 §1.1: TokenType: EXTERNAL_IDP / tokentype: API_KEY on every call; nothing for other kinds.
        return token_type_headers(self.auth_kind)


def login_identity(record: TokenRecord) -> tuple[str, ...]:
    """Which account a login belongs to, stable across token rotation (Kiro's or ours)."""
    return (
        record.origin,
        str(record.source or ""),
        record.row_key or "",
        record.auth_kind,
        (record.provider or "").lower(),
        record.profile_arn or "",
        record.client_id_hash or record.client_id or "",
        record.access_token if record.auth_kind == "api_key" else "",
    )


def registration_for(record: TokenRecord, now: datetime) -> ClientRegistration | None:
    """The OIDC client registration an IdC refresh needs: kiro-cli's row, or Kiro's `<clientIdHash>.json`."""
    if record.auth_kind != "idc" or record.source is None:
        return None
    if record.origin == "kiro_cli":
        registration = record.registration
        if registration is None:
            raise KiroLoginRequired(
                "The kiro-cli login has no device registration, so it cannot be renewed: run kiro-cli login again"
            )
        if registration.expires_at is not None and registration.expires_at <= now:
            raise KiroLoginRequired("kiro-cli's device registration has expired: run kiro-cli login again")
        return registration
    if not record.client_id_hash:
        raise KiroLoginRequired("The Kiro login has no clientIdHash, so it cannot be renewed: log in to Kiro again")
    try:
        path = registration_path(record.source, record.client_id_hash)
        registration = read_registration(record.source, record.client_id_hash)
    except TokenFileError as exc:
        raise KiroLoginRequired(f"{exc}: log in to Kiro again") from None
    if registration is None:
        raise KiroLoginRequired(f"Kiro's client registration {path} is missing: log in to Kiro again")
    if registration.expires_at is not None and registration.expires_at <= now:
        raise KiroLoginRequired(
            f"Kiro's client registration expired on {registration.expires_at:%Y-%m-%d}: log in to Kiro again"
        )
    return registration

"""Which profile ARN a login sends, and finding one when the login names none (kiro-protocol-2026.md §2).

Order: none for an API key (§3); the KIRO_PROFILE_ARN override; the login's own ARN (social tokens,
kiro-cli's profile row); Builder ID by setting (§2.4: omit or Kiro's placeholder); what was found before;
else Kiro's profile.json (token-file logins), then ListAvailableProfiles (profiles.py). Every path taken is
logged, with the ARN's account id shortened.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx

from ..config import Settings
from ..core.errors import KiroLoginRequired
from .login_kind import is_builder_id, is_enterprise, kind_label, login_label, mask_arn, token_type_headers
from .profiles import discover_profile_arn
from .token_file import TokenRecord, read_profile_arn

log = logging.getLogger(__name__)

# Kiro's placeholder profile for Builder ID, sent only when builder_id_arn = "placeholder" (2026 §2.4).
BUILDER_ID_PLACEHOLDER_ARN = "arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX"
UNKNOWN = "unknown"


class ProfileArns:
    """The ARN found for the current login (profile.json or ListAvailableProfiles), and how to find one."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._found: tuple[str, str] | None = None  # (arn, where from) for the current login

    def forget(self) -> None:
        """A different login, or Kiro said the ARN is wrong: look it up again next time."""
        with self._lock:
            self._found = None

    def known(self, record: TokenRecord) -> tuple[str | None, str]:
        """The ARN to send and where it came from, or (None, UNKNOWN) when Kiro must be asked."""
        if record.auth_kind == "api_key":
            return None, ""  # 2026 §3: a key sends no profileArn anywhere
        if self._settings.profile_arn:
            return self._settings.profile_arn, "override"
        if record.profile_arn:
            return record.profile_arn, "login"
        if is_builder_id(record):
            return self._builder_id()
        with self._lock:
            if self._found is not None:
                return self._found
        return None, UNKNOWN

    def _builder_id(self) -> tuple[str | None, str]:
        # 2026 §2.4 / §9.3: sources disagree; "omit" (the default) vs Kiro's placeholder, by setting.
        if self._settings.builder_id_arn == "placeholder":
            return BUILDER_ID_PLACEHOLDER_ARN, "placeholder"
        return None, ""

    async def find(
        self, http: httpx.AsyncClient, record: TokenRecord, *, listed_only: bool = False
    ) -> tuple[str | None, str]:
        """profile.json (§1.4, token-file logins only) else ListAvailableProfiles; remembered once found."""
        profile_file = self._settings.profile_file
        arn, arn_from = None, ""
        if record.origin == "token_file" and not listed_only:
            arn = await asyncio.to_thread(read_profile_arn, profile_file)
            arn_from = "profile.json"
        if arn is None:
            headers = token_type_headers(record.auth_kind)
            arn = await discover_profile_arn(http, self._settings, record.access_token, headers, record.sso_region)
            arn_from = "ListAvailableProfiles"
        if arn is None:
            if record.auth_kind == "idc" and not is_enterprise(record):
                # A kiro-cli OIDC login that does not say which kind it is, and Kiro lists no profile for it:
                # that is how a Builder ID behaves (2026 §2.2), so treat it as one.
                log.info("No Kiro profile is listed for this %s login; using it as a Builder ID", kind_label(record))
                return self._builder_id()
            where = f"{profile_file} does not exist and " if record.origin == "token_file" else ""
            raise KiroLoginRequired(
                f"No Kiro profile found for the {login_label(record)} login: it names none, {where}Kiro listed none. "
                "Open Kiro, choose a profile, and try again, or set KIRO_PROFILE_ARN"
            )
        log.info("Using the Kiro profile %s (from %s)", mask_arn(arn), arn_from)
        with self._lock:
            self._found = (arn, arn_from)
        return arn, arn_from

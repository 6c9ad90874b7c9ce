"""Where a Kiro login comes from, in order: the token file, kiro-cli's database, KIRO_API_KEY, the seed's tokens.

The first source that is *present* decides (kiro-protocol-2026.md §3, §5; issue #10): a token file that
exists but is malformed is reported by name instead of silently falling back to a different account.
`settings.login_sources` changes the order; `settings.kiro_cli_key` picks one of several kiro-cli rows.
Blocking (file and sqlite reads); async code calls it through `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from ..config import Settings
from .env_login import load_environment_login
from .kiro_cli import read_cli_logins
from .token_file import TokenFileError, TokenRecord, read_token_file

log = logging.getLogger(__name__)

# Kiro API keys start with `ksk_` (kiro-protocol-2026.md §3); the rest is URL-safe base64-ish text.
_API_KEY = re.compile(r"ksk_[A-Za-z0-9_\-.~+/=]{8,}")


@dataclass(frozen=True)
class Found:
    """The outcome of one look: the login (or None), the source it came from, and a problem if any.

    `problem` names the source and what is wrong with it, never a value from it. `note` says which of
    several kiro-cli logins was taken.
    """

    record: TokenRecord | None
    origin: str  # the source that decided, or "" when no source holds a login
    where: str  # a path or a variable name, for the status page and error messages
    problem: str | None = None
    note: str = ""


def api_key_login(value: str) -> TokenRecord:
    """KIRO_API_KEY as a login: the key is the bearer, there is nothing to refresh and no profile ARN."""
    key = value.strip()
    if not _API_KEY.fullmatch(key):
        raise TokenFileError("KIRO_API_KEY does not look like a Kiro API key (one starts with ksk_)")
    return TokenRecord(key, "", expires_at=None, auth_kind="api_key", origin="api_key", provider="ApiKey")


def find_login(settings: Settings) -> Found:
    """Try each configured source in order; the first one that holds something (good or bad) wins."""
    looked: list[str] = []
    for origin in settings.source_order:
        try:
            found = _look(settings, origin)
        except TokenFileError as exc:
            return Found(None, origin, _where(settings, origin), problem=str(exc))
        if found is not None:
            return found
        looked.append(_where(settings, origin))
    return Found(None, "", " or ".join(looked) or "nowhere")


def _where(settings: Settings, origin: str) -> str:
    return {
        "token_file": str(settings.token_file),
        "kiro_cli": str(settings.kiro_cli_db),
        "api_key": "KIRO_API_KEY",
        "environment": "environment",
    }[origin]


def _look(settings: Settings, origin: str) -> Found | None:
    where = _where(settings, origin)
    if origin == "token_file":
        record = read_token_file(settings.token_file)
        return None if record is None else Found(record, origin, where)
    if origin == "kiro_cli":
        logins = read_cli_logins(settings.kiro_cli_db, settings.kiro_cli_key)
        if logins is None or logins.record is None:
            return None
        note = ""
        if len(logins.keys) > 1:
            note = (
                f"kiro-cli holds {len(logins.keys)} logins ({', '.join(logins.keys)}); using {logins.record.row_key}. "
                "Set kiro_cli_key in config.json to choose another."
            )
        return Found(logins.record, origin, where, note=note)
    if origin == "api_key":
        return Found(api_key_login(settings.kiro_api_key), origin, where) if settings.kiro_api_key else None
    record = load_environment_login(settings)  # the seed, or its last renewal kept in the state folder
    return None if record is None else Found(record, origin, where)

"""kiro-cli's login database as kiro-cli writes it (kiro-protocol-2026.md §5), for the fake's accounts.

`auth_kv(key, value)` and `state(key, value)` with JSON values in snake_case; `expires_at` in RFC 3339 with
7 fractional digits (CAP §2); "odic" is the real spelling. Written in WAL mode like a live kiro-cli database.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from .accounts import Account


def kiro_cli_db_path(home: Path) -> Path:
    """The Linux location with XDG_DATA_HOME at its default (the conftest sets it so)."""
    return home / ".local" / "share" / "kiro-cli" / "data.sqlite3"


def _expiry(seconds: float) -> str:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}4Z"


def token_row(account: Account, expires_in: float = 3600) -> tuple[str, dict[str, Any]]:
    """The auth_kv key and value kiro-cli keeps for this login."""
    common = {
        "access_token": account.access_token,
        "refresh_token": account.refresh_token,
        "expires_at": _expiry(expires_in),
    }
    if account.kind == "social":
        return "kirocli:social:token", {
            **common,
            "provider": account.provider.lower(),
            "profile_arn": account.profile_arn,
        }
    if account.kind == "external_idp":
        return "kirocli:external-idp:token", {
            **common,
            "issuer_url": account.issuer_url,
            "token_endpoint": account.token_endpoint,
            "client_id": account.client_id,
            "scopes": "openid offline_access",
        }
    # §5: the odic row carries no ARN; start_url tells Builder ID from Identity Center.
    return "kirocli:odic:token", {**common, "region": account.region, "start_url": account.start_url}


def write_kiro_cli_db(
    home: Path,
    *rows: tuple[str, Any],
    account: Account | None = None,
    expires_in: float = 3600,
    profile_arn: str | None = None,
    wal: bool = True,
) -> Path:
    """Create kiro-cli's database under `home` with the account's rows (plus any raw `rows`)."""
    path = kiro_cli_db_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        if wal:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS auth_kv (key TEXT PRIMARY KEY, value TEXT)")
        connection.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB)")
        entries = list(rows)
        if account is not None:
            entries.append(token_row(account, expires_in))
            if account.kind == "idc":
                registration = {
                    "client_id": account.client_id,
                    "client_secret": account.client_secret,
                    "region": account.region,
                }
                entries.append(("kirocli:odic:device-registration", registration))
        for key, value in entries:
            text = value if isinstance(value, str) else json.dumps(value)
            connection.execute("INSERT OR REPLACE INTO auth_kv VALUES (?, ?)", (key, text))
        if profile_arn:
            profile = json.dumps({"arn": profile_arn, "profile_name": "QDefaultProfile"})
            connection.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", ("api.codewhisperer.profile", profile))
        connection.commit()
    finally:
        connection.close()
    return path

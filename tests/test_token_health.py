"""Token health as the tray shows it: one table of logins and moments."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ki2api_tray.kiro.token_file import TokenRecord
from ki2api_tray.kiro.token_health import span, token_status
from ki2api_tray.state import TokenHealth

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
FILE = Path("/home/me/.aws/sso/cache/kiro-auth-token.json")
MARGIN = timedelta(minutes=5)
REFUSED = "Kiro token expired and could not be refreshed (invalid_grant): log in to Kiro again"
BROKEN = f"{FILE} is not valid JSON (line 1, column 2)"


def login(
    minutes_left: float | None, access: str = "aoa", refresh: str = "aor", source: Path | None = FILE
) -> TokenRecord:
    expires = None if minutes_left is None else NOW + timedelta(minutes=minutes_left)
    return TokenRecord(access, refresh, expires, "social" if source else "environment", source=source)


@pytest.mark.parametrize(
    ("record", "problem", "failure", "health", "detail"),
    [
        (None, None, None, TokenHealth.MISSING,
         f"No Kiro login found in {FILE}: open Kiro and sign in, run kiro-cli login, or set KIRO_API_KEY"),
        (None, BROKEN, None, TokenHealth.UNREADABLE, f"{BROKEN}: fix it, or sign in to Kiro again"),
        (login(47.5), False, None, TokenHealth.VALID, "expires in 47 min"),
        (login(47.5), BROKEN, None, TokenHealth.VALID, "expires in 47 min"),  # a half-written file changes nothing
        (login(4), False, None, TokenHealth.EXPIRING, "expires in 4 min; renewed on the next request"),
        (login(-0.5), False, None, TokenHealth.EXPIRED, "expired less than a minute ago; renewed on the next request"),
        (login(-90, refresh=""), False, None, TokenHealth.EXPIRED, "expired 90 min ago: log in to Kiro again"),
        (login(None), False, None, TokenHealth.VALID, "expiry unknown"),
        (login(None, access="", source=None), False, None, TokenHealth.EXPIRED,
         "no access token yet; one is fetched on the next request"),
        (login(-5), False, REFUSED, TokenHealth.REFRESH_FAILED, REFUSED),
    ],
)  # fmt: skip
def test_token_status_table(
    record: TokenRecord | None, problem: str | None, failure: str | None, health: TokenHealth, detail: str
) -> None:
    status = token_status(record, where=str(FILE), now=NOW, margin=MARGIN, problem=problem, failure=failure)
    assert (status.health, status.detail) == (health, detail)


def test_token_status_names_source_and_kind() -> None:
    from_file = token_status(login(60), where=str(FILE), now=NOW, margin=MARGIN)
    seeded = token_status(login(60, source=None), where="environment", now=NOW, margin=MARGIN)
    assert (from_file.source, from_file.auth_kind, from_file.expires_at) == (
        str(FILE),
        "social",
        NOW + timedelta(hours=1),
    )
    assert (seeded.source, seeded.auth_kind) == ("environment", "environment")


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(minutes=1), "1 min"),
        (timedelta(minutes=119, seconds=59), "119 min"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(hours=47, minutes=59), "47 h 59 min"),
        (timedelta(days=3, hours=1), "3 days"),
    ],
)
def test_span_reads_like_a_person(delta: timedelta, text: str) -> None:
    assert span(delta) == text


@pytest.mark.parametrize(("refresh", "renewable"), [("aor", True), ("", False)])
def test_expired_token_is_renewable_only_with_a_refresh_token(refresh: str, renewable: bool) -> None:
    # The tray stays calm (amber, no "log in" alarm) only when ki2api can renew the token itself.
    status = token_status(login(-30, refresh=refresh), where=str(FILE), now=NOW, margin=MARGIN)
    assert (status.health, status.renewable) == (TokenHealth.EXPIRED, renewable)

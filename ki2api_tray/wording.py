"""What the tray says about a `Status`: the menu's information lines, the tooltip and the icon's level.

Pure text building (no pystray), shared by the tray menu and the status page. The port-in-use
sentence is written and recognised here, so the service and the tray agree on it.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

from .i18n import Translator
from .state import AccountStatus, Phase, Quota, Status, TokenHealth, TokenStatus

# Windows keeps the tooltip in a fixed WCHAR[128] (pystray _util/win32.py); longer text raises ValueError.
TOOLTIP_LIMIT = 120
ERROR_LIMIT = 60

_PORT_IN_USE = (
    "Port {port} is already in use — another ki2api or program is using it. Quit it or change the port in config.json."
)
_PORT_IN_USE_PATTERN = re.compile(r"^Port (\d+) is already in use")

UNUSABLE_TOKEN = frozenset(
    {
        TokenHealth.MISSING,
        TokenHealth.UNREADABLE,
        TokenHealth.EXPIRED,
        TokenHealth.REFRESH_FAILED,
        TokenHealth.SUSPENDED,
        TokenHealth.EXHAUSTED,
    }
)


class Level(enum.Enum):
    """The one colour the icon shows; a person should not need the menu to know whether all is well."""

    OK = "ok"  # running, token healthy
    WARN = "warn"  # running, but the token expires soon or the quota is nearly used up
    BAD = "bad"  # the server failed, or the token cannot be used
    OFF = "off"  # stopped (or on its way up or down)


def port_in_use_message(port: int) -> str:
    """The `last_error` the service records when it cannot bind."""
    return _PORT_IN_USE.format(port=port)


def port_in_use(status: Status) -> int | None:
    """The port another program holds, if that is why the server is not running."""
    if status.phase is not Phase.ERROR:
        return None
    match = _PORT_IN_USE_PATTERN.match(status.last_error)
    return int(match.group(1)) if match else None


def level_of(status: Status) -> Level:
    if status.phase is Phase.ERROR:
        return Level.BAD
    if status.phase is not Phase.RUNNING:
        return Level.OFF
    token = status.token
    renewing = token.health is TokenHealth.EXPIRED and token.renewable
    if token.health in UNUSABLE_TOKEN and not renewing:
        return Level.BAD
    cooling = token.health is TokenHealth.COOLDOWN
    if (
        token.health is TokenHealth.EXPIRING
        or renewing
        or cooling
        or (status.quota is not None and status.quota.is_low)
    ):
        return Level.WARN
    return Level.OK


def status_line(status: Status, tr: Translator) -> str:
    marker = "○" if status.phase in (Phase.STOPPED, Phase.STOPPING) else "●"
    if status.phase is Phase.RUNNING:
        text = tr("status.running", address=status.address)
    elif status.phase is Phase.STARTING:
        text = tr("status.starting")
    elif status.phase is Phase.STOPPING:
        text = tr("status.stopping")
    elif status.phase is Phase.STOPPED:
        text = tr("status.stopped")
    else:
        port = port_in_use(status)
        if port is not None:
            text = tr("status.port_in_use", port=port)
        else:
            text = tr("status.error", error=shorten(status.last_error or "?", ERROR_LIMIT))
    return f"{marker} {text}"


def token_line(token: TokenStatus, tr: Translator, now: datetime) -> str:
    health = token.health
    if health in (TokenHealth.VALID, TokenHealth.EXPIRING):
        if token.expires_at is None:
            return tr("token.valid_no_expiry")
        left = duration_text((token.expires_at - now).total_seconds(), tr)
        return tr("token.valid" if health is TokenHealth.VALID else "token.expiring", duration=left)
    if health is TokenHealth.EXPIRED and token.renewable:
        return tr("token.renewing")
    if health is TokenHealth.SUSPENDED:
        return tr("token.suspended")
    if health is TokenHealth.EXHAUSTED:
        when = date_text(token.blocked_until, tr) if token.blocked_until else "?"
        return tr("token.exhausted", date=when)
    if health is TokenHealth.COOLDOWN:
        seconds = (token.blocked_until - now).total_seconds() if token.blocked_until else 0.0
        return tr("token.cooldown", duration=duration_text(seconds, tr))
    key = {
        TokenHealth.EXPIRED: "token.expired",
        TokenHealth.MISSING: "token.missing",
        TokenHealth.UNREADABLE: "token.unreadable",
        TokenHealth.REFRESH_FAILED: "token.refresh_failed",
    }[health]
    return tr(key)


def account_line(account: AccountStatus, tr: Translator, now: datetime) -> str:
    """ "work (in use): valid for 52 min" — one account of a pool, for the tray and the status page."""
    key = "account.in_use" if account.in_use else "account.line"
    return tr(key, name=account.name, health=token_line(account.token, tr, now))


def login_line(token: TokenStatus, tr: Translator) -> str:
    """ "Login: Builder ID, from kiro-cli" (empty when there is no login)."""
    return tr("token.login", login=token.login) if token.login else ""


def requests_line(status: Status, tr: Translator) -> str:
    count = f"{status.requests_today:,}"
    if status.errors_today:
        return tr("requests.today_errors", count=count, errors=f"{status.errors_today:,}")
    return tr("requests.today", count=count)


def quota_line(quota: Quota | None, tr: Translator) -> str:
    if quota is None or quota.limit <= 0:
        return tr("quota.unknown")
    remaining, limit = amount_text(quota.remaining), amount_text(quota.limit)
    if quota.resets_at is None:
        return tr("quota.left", remaining=remaining, limit=limit)
    return tr("quota.left_resets", remaining=remaining, limit=limit, date=date_text(quota.resets_at, tr))


def tooltip(status: Status, tr: Translator, now: datetime) -> str:
    """Status and token in one line, short enough for the Windows tooltip buffer."""
    text = status_line(status, tr).lstrip("●○ ")
    if status.phase is Phase.RUNNING:
        text = f"{text}\n{token_line(status.token, tr, now)}"
    return shorten(text, TOOLTIP_LIMIT)


def duration_text(seconds: float, tr: Translator) -> str:
    minutes = int(max(seconds, 0) // 60)
    if minutes < 1:
        return tr("duration.under_minute")
    if minutes < 60:
        return tr("duration.minutes", minutes=minutes)
    if minutes < 48 * 60:
        return tr("duration.hours", hours=minutes // 60, minutes=minutes % 60)
    return tr("duration.days", days=minutes // (24 * 60))


def amount_text(value: float) -> str:
    """Quota numbers as a person writes them: 50, 37.5, 0.25."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def date_text(moment: datetime, tr: Translator) -> str:
    local = moment.astimezone() if moment.tzinfo else moment
    # With the year: a reset date in January read in December, or a forecast months ahead, must not be ambiguous.
    return tr("date.short", day=local.day, month_name=tr.month_name(local.month), year=local.year)


def shorten(text: str, limit: int) -> str:
    """Collapse runs of whitespace (keeping line breaks) and cut with an ellipsis."""
    text = "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

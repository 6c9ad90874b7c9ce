"""Which notifications a change of state deserves: pure, so every rule is tested with plain values.

Only things a person has to act on: the server could not run, the login ended or is about to without a
way to renew it, Kiro locked the account or the credits ran out, and 80 % / 95 % of the plan's credits
used. `told` remembers the events already announced, so each is told once (per quota period for credits).
"""

from __future__ import annotations

from datetime import datetime

from ..i18n import Translator
from ..state import Phase, Status, TokenHealth
from ..wording import amount_text, duration_text, port_in_use

CREDIT_WARNINGS = (0.95, 0.80)  # share of the plan's credits used at which the tray speaks up, highest first


def notices(before: Status, after: Status, tr: Translator, now: datetime, told: set[tuple[str, str]]) -> list[str]:
    found: list[str] = []
    if after.phase is Phase.ERROR and before.phase is not Phase.ERROR:
        port = port_in_use(after)
        if port is not None:
            found.append(tr("notify.port_in_use", port=port))
        elif before.phase is Phase.RUNNING:
            found.append(tr("notify.crashed", error=after.last_error))
        else:
            found.append(tr("notify.start_failed", error=after.last_error))
    token = after.token
    if token.health is not before.token.health:
        # An expired token with a refresh token is renewed by the keeper within a minute: no alarm.
        if token.health is TokenHealth.EXPIRED and not token.renewable:
            found.append(tr("notify.token_expired"))
        elif token.health is TokenHealth.REFRESH_FAILED:
            found.append(tr("notify.refresh_failed"))
        elif token.health is TokenHealth.SUSPENDED:
            found.append(tr("notify.suspended", message=token.detail))
    if len(after.accounts) > 1:
        # Several accounts (issue #14): which one Kiro locked, unless it is the one in use (told above).
        was = {account.name: account.token.health for account in before.accounts}
        for account in after.accounts:
            health = account.token.health
            if health is TokenHealth.SUSPENDED and was.get(account.name) is not health and not account.in_use:
                found.append(tr("notify.account_suspended", name=account.name, message=account.token.detail))
    if token.health is TokenHealth.EXPIRING and not token.renewable and token.expires_at is not None:
        event = ("login_expiring", token.expires_at.isoformat())
        if event not in told:
            told.add(event)
            left = duration_text((token.expires_at - now).total_seconds(), tr)
            found.append(tr("notify.login_expiring", duration=left))
    # A suspension the login itself reports (TokenHealth.SUSPENDED) was told above; this is a request's word.
    suspended_login = token.health is TokenHealth.SUSPENDED
    if (
        after.account_alert
        and after.account_alert != before.account_alert
        and not (after.account_alert == "suspended" and suspended_login)
    ):
        key = "notify.suspended" if after.account_alert == "suspended" else "notify.out_of_credits"
        found.append(tr(key, message=after.account_message))
    found.extend(_credit_warnings(after, tr, told))
    return found


def _credit_warnings(status: Status, tr: Translator, told: set[tuple[str, str]]) -> list[str]:
    quota = status.quota
    used = quota.used_fraction if quota is not None else None
    if quota is None or used is None:
        return []
    period = quota.resets_at.isoformat() if quota.resets_at else quota.subscription
    for share in CREDIT_WARNINGS:
        if used < share:
            continue
        if ("credits", f"{share}:{period}") in told:
            return []
        # Crossing 95 % at once also counts as the 80 % warning: one message, the more urgent one.
        told.update(("credits", f"{lower}:{period}") for lower in CREDIT_WARNINGS if lower <= share)
        limit, spent = amount_text(quota.limit), amount_text(quota.used)
        return [tr("notify.credits_used", percent=int(share * 100), used=spent, limit=limit)]
    return []

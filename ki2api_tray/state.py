"""AppState: the one observable state object.

The service replaces the whole `Status` snapshot under a lock; readers (the tray, `/health`, the
status page) take `snapshot()` and never see a half-updated value. Subscribers are called on the
writer's thread, so they must only schedule work (the tray debounces and hops to its UI thread).
This module imports nothing else from the package.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

# Where a person with a suspended Kiro account goes when Kiro's message names no link of its own.
KIRO_SUPPORT_URL = "https://kiro.dev/support/"


class Phase(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    ERROR = "error"  # could not start (port in use) or crashed; `last_error` says why


class TokenHealth(enum.Enum):
    MISSING = "missing"  # no token file and no token in the environment
    UNREADABLE = "unreadable"  # the file exists but is not a Kiro token (after retries)
    VALID = "valid"
    EXPIRING = "expiring"  # valid, but less than the refresh margin left and not yet refreshed
    EXPIRED = "expired"
    REFRESH_FAILED = "refresh_failed"  # Kiro's auth service refused or could not be reached
    # Account signals (kiro-protocol-2026.md §7): the login is fine, Kiro will not serve it for now.
    SUSPENDED = "suspended"  # Kiro locked the account; only Kiro support lifts it
    EXHAUSTED = "exhausted"  # credits used up until the reset date
    COOLDOWN = "cooldown"  # "suspicious activity" throttle: resting for a while


@dataclass(frozen=True)
class TokenStatus:
    health: TokenHealth
    expires_at: datetime | None = None
    auth_kind: str = ""  # "social", "idc", "external_idp", "api_key" or "environment"
    source: str = ""  # the token file's or database's path, or the variable's name
    detail: str = ""  # a sentence for the person, never containing a token
    renewable: bool = False  # a refresh token exists, so ki2api can renew an expired access token itself
    login: str = ""  # the kind and where it came from: "Builder ID, from kiro-cli"
    profile_arn: str = ""  # the ARN in use, its account id shortened (login_kind.mask_arn)
    note: str = ""  # e.g. which of several kiro-cli logins is used
    support_url: str = ""  # set while Kiro has suspended the account
    blocked_until: datetime | None = None  # end of an EXHAUSTED / COOLDOWN block


@dataclass(frozen=True)
class Quota:
    subscription: str = ""
    used: float = 0.0
    limit: float = 0.0
    resets_at: datetime | None = None
    # Kiro's `overageConfiguration.overageStatus` ("ENABLED", "DISABLED"; "" when not reported): whether
    # requests past the limit are billed as overage instead of refused.
    overage: str = ""

    @property
    def remaining(self) -> float:
        return max(self.limit - self.used, 0.0)

    @property
    def is_low(self) -> bool:
        return self.limit > 0 and self.remaining / self.limit < 0.1

    @property
    def used_fraction(self) -> float | None:
        return self.used / self.limit if self.limit > 0 else None


@dataclass(frozen=True)
class RequestRecord:
    """One chat request as the usage store keeps it: facts about the request, never its text or a secret.

    `changes` are what ki2api altered on the way to Kiro, as (kind, detail) pairs such as
    ("tool_renamed", "a_very_long_name -> a_very_long_n_1f2e"); the status page explains each kind.
    `error` is the message the client got (often Kiro's own words), `error_kind` its stable code.
    """

    time: datetime
    api: str = ""  # "openai", "anthropic" or "responses"
    client: str = ""  # from the User-Agent: "claude-cli", "OpenAI/Python", ...
    model_requested: str = ""
    model: str = ""  # the Kiro model that answered (or would have)
    login: str = ""  # which login paid: its kind or account name
    status: int = 200
    error_kind: str = ""
    error: str = ""
    duration_ms: float = 0.0
    ttfb_ms: float | None = None  # until Kiro's first chunk arrived
    input_tokens: int | None = None
    output_tokens: int | None = None
    context_percent: float | None = None
    credits: float | None = None
    stream: bool = False
    changes: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass(frozen=True)
class AccountStatus:
    """One Kiro account of the pool (issue #14): its login's health and quota, and whether it serves now."""

    name: str
    token: TokenStatus
    quota: Quota | None = None
    in_use: bool = False

    def as_public_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in_use": self.in_use,
            "kind": self.token.auth_kind,
            "login": self.token.login,
            "health": self.token.health.value,
            "detail": self.token.detail,
            "support_url": self.token.support_url,
            "blocked_until": self.token.blocked_until.isoformat() if self.token.blocked_until else None,
            "quota": _quota_dict(self.quota),
        }


def _quota_dict(quota: Quota | None) -> dict[str, Any] | None:
    if quota is None:
        return None
    return {
        "subscription": quota.subscription,
        "used": quota.used,
        "limit": quota.limit,
        "remaining": quota.remaining,
        "resets_at": quota.resets_at.isoformat() if quota.resets_at else None,
        "overage": quota.overage,
    }


@dataclass(frozen=True)
class Release:
    """A newer ki2api release than the running one, and its web page."""

    version: str
    url: str


@dataclass(frozen=True)
class Status:
    phase: Phase = Phase.STOPPED
    address: str = ""  # "127.0.0.1:8989" while running
    token: TokenStatus = TokenStatus(TokenHealth.MISSING)
    requests_today: int = 0
    errors_today: int = 0
    requests_total: int = 0
    errors_total: int = 0
    counts_date: str = ""  # ISO date the "today" counters belong to
    last_request_at: datetime | None = None
    last_error: str = ""
    # When `last_error` happened and what failed ("request", "server", "quota"): the next success of the
    # same kind clears it, so the page never shows a problem that has gone away.
    last_error_at: datetime | None = None
    last_error_kind: str = ""
    # What Kiro last said about the account itself: "suspended" or "out_of_credits" (with its words in
    # `account_message`); "" once a request goes through again. The tray tells the person once.
    account_alert: str = ""
    account_message: str = ""
    quota: Quota | None = None
    accounts: tuple[AccountStatus, ...] = ()  # every Kiro account in priority order (one without a pool)
    tray_menu_missing: bool = False  # from source on Linux without PyGObject: the tray icon has no menu
    update: Release | None = None  # set by the update check when a newer release exists

    def as_public_dict(self) -> dict[str, Any]:
        """What `/health` and the status page show: no secrets, JSON-ready."""
        return {
            "status": self.phase.value,
            "address": self.address,
            "token": {
                "health": self.token.health.value,
                "expires_at": self.token.expires_at.isoformat() if self.token.expires_at else None,
                "auth_kind": self.token.auth_kind,
                "source": self.token.source,
                "detail": self.token.detail,
                "login": self.token.login,
                "profile_arn": self.token.profile_arn,
                "note": self.token.note,
                "support_url": self.token.support_url,
                "blocked_until": self.token.blocked_until.isoformat() if self.token.blocked_until else None,
            },
            "requests": {
                "today": self.requests_today,
                "errors_today": self.errors_today,
                "total": self.requests_total,
                "errors_total": self.errors_total,
                "last_at": self.last_request_at.isoformat() if self.last_request_at else None,
            },
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "quota": _quota_dict(self.quota),
            "accounts": [account.as_public_dict() for account in self.accounts],
        }


class Reporter(Protocol):
    """How the HTTP server tells the service what happened; the service turns it into AppState updates."""

    def request_finished(self, ok: bool, error: str = "", record: RequestRecord | None = None) -> None:
        """One chat request ended; `record` carries its facts for the usage store (None: count it only)."""
        ...

    def quota_failed(self, error: str) -> None: ...

    def quota_changed(self, quota: Quota) -> None: ...

    def token_changed(self, status: TokenStatus) -> None: ...


Subscriber = Callable[[Status], None]


class AppState:
    def __init__(self, initial: Status | None = None) -> None:
        self._lock = threading.Lock()
        self._status = initial or Status()
        self._subscribers: list[Subscriber] = []

    def snapshot(self) -> Status:
        with self._lock:
            return self._status

    def update(self, **changes: Any) -> Status:
        """Replace fields of the snapshot; subscribers hear about it only if something changed."""
        return self.apply(lambda s: replace(s, **changes))

    def apply(self, change: Callable[[Status], Status]) -> Status:
        """Compute the next snapshot from the current one atomically (counters use this)."""
        with self._lock:
            old = self._status
            new = change(old)
            self._status = new
            subscribers = list(self._subscribers)
        if new != old:
            for callback in subscribers:
                callback(new)
        return new

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

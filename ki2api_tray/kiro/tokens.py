"""TokenStore: the current Kiro login, how healthy it is, and renewing it (single flight) with write-back.

The login comes from the first source that holds one (login_sources.py: token file, kiro-cli database,
KIRO_API_KEY, the seed's tokens); it is read on start and whenever the watcher says a source changed. A
request that needs a token with little life left, or one Kiro just rejected, triggers at most one refresh
at a time. Only the token file is ever written back; kiro-cli's database, keys and seeds stay as they are.
One store holds one login: several accounts (issue #14) are several stores.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NoReturn

import httpx

from ..config import Settings
from ..core.errors import KiroLoginRequired, KiroUnavailable
from ..state import TokenStatus
from .account_block import SUSPENDED, Block
from .credentials import Credentials, login_identity, registration_for
from .env_login import save_environment_login
from .login_kind import (
    login_label,
    mask_arn,
)
from .login_sources import Found, find_login
from .profile_arns import BUILDER_ID_PLACEHOLDER_ARN, ProfileArns
from .token_file import (
    ClientRegistration,
    TokenRecord,
    write_back,
)
from .token_health import token_status
from .token_refresh import refresh_login

log = logging.getLogger(__name__)

# After the login service could not be reached, a token that still works is used for this long before
# the next attempt, so an outage does not add a refresh timeout to every request.
REFRESH_RETRY_DELAY = timedelta(seconds=30)
# After the login service failed (5xx, timeout, unreachable), the next try waits FIRST, doubling per
# consecutive failure up to MAX, stretched by up to JITTER so many ki2api instances do not retry in step.
BACKOFF_FIRST = 2.0
BACKOFF_MAX = 120.0
BACKOFF_JITTER = 0.25


def backoff_delay(failures: int, jitter: float | None = None) -> timedelta:
    """The wait after `failures` consecutive failures (1, 2, ...); `jitter` in [0, 1] replaces the random draw."""
    draw = random.random() if jitter is None else jitter
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(failures - 1, 0))
    return timedelta(seconds=base * (1 + BACKOFF_JITTER * draw))


__all__ = ["BUILDER_ID_PLACEHOLDER_ARN", "Credentials", "TokenStore"]


@dataclass(frozen=True)
class _Failure:
    """The last refresh that did not work; kept until a refresh succeeds or a different login appears."""

    error: KiroLoginRequired | KiroUnavailable

    @property
    def login_required(self) -> bool:
        return isinstance(self.error, KiroLoginRequired)

    def raise_again(self) -> NoReturn:
        # A fresh instance per waiter: re-raising one object from many tasks would pile up tracebacks.
        raise type(self.error)(self.error.message)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class TokenStore:
    """Holds the last good login and its health; safe to use from the watcher thread and any event loop.

    Invariants: `_record` is replaced whole, never mutated; `_lock` guards the mutable fields and is never
    held across an await or a file read; the asyncio lock that makes refresh single-flight is created per
    running loop, because the server is restarted in new threads with new loops.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        on_status: Callable[[TokenStatus], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        refresh_margin: timedelta = timedelta(minutes=5),
    ) -> None:
        self._settings = settings
        self._on_status = on_status
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        # Serialises "read the file, store what was read" with "write back, store what was written", so a
        # watcher reload that read the file just before a write-back cannot bring the old login back.
        self._file_lock = threading.Lock()
        self._record: TokenRecord | None = None
        self._read: TokenRecord | None = None  # what the source held when last read (before our refreshes)
        self._looked = Found(None, "", str(settings.token_file))
        self._block: Block | None = None
        self._failure: _Failure | None = None
        self._retry_at: datetime | None = None
        self._failed_in_a_row = 0  # consecutive refreshes the login service failed (not refused)
        self._attempts = 0  # finished refresh attempts; a waiter that sees it move shares that outcome
        self._arns = ProfileArns(settings)  # the ARN found for the current login
        self._published: TokenStatus | None = None
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        with self._lock:
            status = self._evaluate(self._clock())
        return f"TokenStore(source={status.source!r}, health={status.health.value!r})"

    # --- reading and health -----------------------------------------------------------------------

    def reload(self) -> TokenStatus:
        """Re-read the login sources (watcher thread, startup). A half-written file never logs anyone out."""
        with self._file_lock:
            found = find_login(self._settings)
            with self._lock:
                before = self._looked
                self._looked = found
                if found.problem is not None:
                    pass  # keep the last good login: Kiro may be half-way through writing the file
                elif found.record is None:
                    self._read = None
                    self._adopt(None)
                elif found.record != self._read:
                    # The source changed; an unchanged one keeps our in-memory refresh (kiro-cli, seeds).
                    self._read = found.record
                    self._adopt(found.record)
        if found.problem is not None and found.problem != before.problem:
            log.warning("The Kiro login in %s is unusable: %s", found.origin or "its source", found.problem)
        if found.note and found.note != before.note:
            log.info("%s", found.note)
        if found.record is not None and (before.record is None or before.origin != found.origin):
            log.info("Using the %s login", login_label(found.record))
        return self._publish()

    def status(self) -> TokenStatus:
        """The current health, re-evaluated against the clock; `on_status` hears about any change."""
        return self._publish()

    def describe(self) -> str:
        """A few lines for `ki2api-tray status`: where the login comes from and how it is doing."""
        status = self.status()
        lines = [
            f"Login:        {status.login or 'none'}",
            f"Token source: {status.source}",
            f"Login kind:   {status.auth_kind or 'none'}",
            f"Health:       {status.health.value} ({status.detail})",
        ]
        if status.expires_at is not None:
            lines.append(f"Expires at:   {status.expires_at.astimezone():%Y-%m-%d %H:%M:%S %Z}")
        if status.profile_arn:
            lines.append(f"Profile ARN:  {status.profile_arn}")
        if status.note:
            lines.append(f"Note:         {status.note}")
        return "\n".join(lines)

    def identity(self) -> tuple[str, ...] | None:
        """Which account the current login belongs to (stable across token rotation), for per-login caches."""
        with self._lock:
            return login_identity(self._record) if self._record is not None else None

    def _current_arn(self) -> str | None:
        """The ARN the next call will send, as far as it is known without asking Kiro (caller holds `_lock`)."""
        record = self._record
        if record is None or record.auth_kind == "api_key":
            return None
        return self._arns.known(record)[0]

    def _adopt(self, record: TokenRecord | None) -> None:
        """Use a login read from disk or the environment (caller holds `_lock`)."""
        if record is not None and record.same_tokens(self._record):
            self._record = record
            return
        # A different login (or Kiro's own refresh) clears a failure that belonged to the old one, and
        # the profile looked up for it: profile.json may have changed with it. An account block stays while
        # the account is the same: Kiro rotating its tokens does not lift a suspension (2026 §7).
        if record is None or self._record is None or login_identity(record) != login_identity(self._record):
            self._block = None
        self._record = record
        self._failure = None
        self._retry_at = None
        self._arns.forget()
        self._failed_in_a_row = 0

    def _publish(self) -> TokenStatus:
        with self._lock:
            status = self._evaluate(self._clock())
            changed = status != self._published
            self._published = status
        if changed and self._on_status is not None:
            self._on_status(status)
        return status

    def _evaluate(self, now: datetime) -> TokenStatus:
        """The health of the current login (caller holds `_lock`)."""
        looked = self._looked
        return token_status(
            self._record,
            where=looked.where,
            now=now,
            margin=self._margin,
            problem=looked.problem,
            failure=self._failure.error.message if self._failure is not None else None,
            block=self._block,
            profile_arn=self._current_arn(),
            note=looked.note,
        )

    def _missing_error(self) -> KiroLoginRequired:
        with self._lock:
            looked = self._looked
        if looked.problem is not None:
            return KiroLoginRequired(
                f"The Kiro login cannot be used: {looked.problem}. Fix it, or sign in to Kiro again"
            )
        return KiroLoginRequired(
            f"No Kiro login found in {looked.where}: open Kiro and sign in, run kiro-cli login, or set KIRO_API_KEY"
        )

    # --- account signals (kiro-protocol-2026.md §7) -------------------------------------------------

    def block(self, creds: Credentials, block: Block) -> None:
        """Stop using the login `creds` came from until the block lifts (suspension: until a restart)."""
        with self._lock:
            if self._record is None or login_identity(self._record) != creds.identity:
                return
            self._block = block
        if block.kind == SUSPENDED:
            log.error("Kiro suspended the %s login; ki2api stops using it: %s", creds.label, block.message)
        else:
            log.warning("Kiro %s the %s login until %s", block.kind, creds.label, block.until or "further notice")
        self._publish()

    def blocked(self) -> Block | None:
        with self._lock:
            block, now = self._block, self._clock()
            if block is not None and not block.active(now):
                self._block = block = None
        if block is None and self._published is not None and self._published.blocked_until is not None:
            self._publish()
        return block

    def _raise_if_blocked(self) -> None:
        block = self.blocked()
        if block is not None:
            raise block.error(self._clock())

    def _needs_refresh(self, record: TokenRecord, now: datetime) -> bool:
        """Whether a request should renew `record` before using it (caller holds `_lock`)."""
        if record.auth_kind == "api_key":
            return False  # a key is the bearer itself: nothing to renew (2026 §3)
        if not record.access_token:
            return True
        if record.expires_at is None:
            return False  # nothing to go by; Kiro's 403 will tell us (refresh_after_rejection)
        left = record.expires_at - now
        if left > self._margin:
            return False
        if left > timedelta(0) and self._failure is not None:
            # While the old token still works, a refused refresh waits for a new login and an unreachable
            # service for REFRESH_RETRY_DELAY, instead of costing every request another attempt.
            return not (self._failure.login_required or (self._retry_at is not None and now < self._retry_at))
        return True

    def _snapshot(self) -> tuple[TokenRecord | None, bool, int]:
        with self._lock:
            record = self._record
            return record, record is not None and self._needs_refresh(record, self._clock()), self._attempts

    # --- credentials and refresh --------------------------------------------------------------------

    async def credentials(self, http: httpx.AsyncClient) -> Credentials:
        """Credentials with more than `refresh_margin` left, renewing first if needed (one refresh at a time)."""
        self._raise_if_blocked()
        record, stale, seen = self._snapshot()
        if record is None:
            await asyncio.to_thread(self.reload)
            record, stale, seen = self._snapshot()
            if record is None:
                raise self._missing_error()
        if stale:
            self._raise_while_backing_off()
            async with self._refresh_lock():
                record, stale, attempts = self._snapshot()
                if stale:
                    if attempts != seen:
                        self._raise_failure_of_shared_attempt()
                    record = await self._refresh(http, record, rejected=None)
        if record is None:
            raise self._missing_error()
        return await self._credentials_for(http, record)

    async def refresh_after_rejection(self, http: httpx.AsyncClient, rejected: Credentials) -> Credentials:
        """After Kiro's 403 "bearer token invalid": renew, unless the current token already differs."""
        current, _, seen = self._snapshot()
        if current is not None and current.auth_kind == "api_key":
            raise KiroLoginRequired(
                "Kiro refused the API key in KIRO_API_KEY (a key cannot be renewed): create a new key in the Kiro "
                "portal, or check that your organisation allows API keys"
            )
        self._raise_while_backing_off()
        async with self._refresh_lock():
            record, stale, attempts = self._snapshot()
            if record is None or record.access_token == rejected.access_token or stale:
                if attempts != seen:
                    self._raise_failure_of_shared_attempt()
                record = await self._refresh(http, record, rejected=rejected.access_token)
        return await self._credentials_for(http, record)

    def _raise_while_backing_off(self) -> None:
        """While the login service is given time to recover, a request that needs a refresh gets a 503."""
        with self._lock:
            failure, retry_at = self._failure, self._retry_at
        if failure is None or failure.login_required or retry_at is None:
            return
        left = (retry_at - self._clock()).total_seconds()
        if left > 0:
            reason = failure.error.message.split("; will retry")[0].rstrip(".")
            error = KiroUnavailable(f"{reason}; ki2api tries again in {math.ceil(left)} s.")
            error.retry_after = math.ceil(left)
            raise error

    def _raise_failure_of_shared_attempt(self) -> None:
        # A refresh finished while this caller waited for the lock; if it failed, its answer is ours too,
        # so 100 waiting requests cost one call to the login service.
        with self._lock:
            failure = self._failure
        if failure is not None:
            failure.raise_again()

    def _refresh_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._lock:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = asyncio.Lock()
            return lock

    async def _refresh(self, http: httpx.AsyncClient, record: TokenRecord | None, rejected: str | None) -> TokenRecord:
        """Renew the login (caller holds the refresh lock); returns the login to use or raises."""
        # Kiro may have refreshed already (kiro-protocol.md §1.6): its newer login beats renewing ours.
        await asyncio.to_thread(self.reload)
        current, stale, _ = self._snapshot()
        if current is None:
            raise self._missing_error()
        if not current.same_tokens(record) and current.access_token != rejected and not stale:
            return current
        with self._lock:
            failure = self._failure
        if failure is not None and failure.login_required:
            failure.raise_again()  # the service refused this refresh token already; only a new login helps
        try:
            registration = await asyncio.to_thread(self._registration_for, current)
            renewed = await refresh_login(http, self._settings, current, registration)
        except (KiroLoginRequired, KiroUnavailable) as exc:
            return self._refresh_failed(current, exc, rejected)
        expires_at = self._clock() + timedelta(seconds=renewed.expires_in)
        new = current.refreshed(renewed.access_token, renewed.refresh_token, expires_at, renewed.profile_arn)
        return await asyncio.to_thread(self._store_refreshed, new, current)

    def _registration_for(self, record: TokenRecord) -> ClientRegistration | None:
        return registration_for(record, self._clock())

    def _refresh_failed(
        self, record: TokenRecord, error: KiroLoginRequired | KiroUnavailable, rejected: str | None
    ) -> TokenRecord:
        now = self._clock()
        still_works = (
            bool(record.access_token)
            and record.access_token != rejected
            and (record.expires_at is None or record.expires_at > now)
        )
        with self._lock:
            current = self._record
            self._attempts += 1
            if record.same_tokens(current):
                self._failure = _Failure(error)
                if isinstance(error, KiroLoginRequired):
                    self._retry_at = None
                else:
                    self._failed_in_a_row += 1
                    wait = backoff_delay(self._failed_in_a_row)
                    # A token that still works carries requests meanwhile, so there is no hurry.
                    self._retry_at = now + (max(wait, REFRESH_RETRY_DELAY) if still_works else wait)
        if current is not None and not record.same_tokens(current):
            # The watcher brought in a new login while we asked; the failure belongs to the old one.
            if current.access_token != rejected and current.expires_at is not None and current.expires_at > now:
                return current
            raise error
        log.warning("Could not renew the Kiro token: %s", error.message)
        self._publish()
        if still_works:
            log.info("Using the current Kiro token until it expires")
            return record
        raise error

    def _store_refreshed(self, new: TokenRecord, old: TokenRecord) -> TokenRecord:
        """Write a renewed file login back the way Kiro does, then make it current (runs in a worker thread)."""
        adopted_from_disk = False
        with self._file_lock:
            if new.origin == "token_file" and new.source is not None:
                try:
                    result = write_back(new, old.refresh_token)
                except OSError as exc:
                    log.warning(
                        "Could not write the renewed Kiro token to %s (%s); keeping it in memory",
                        new.source,
                        exc.strerror or type(exc).__name__,
                    )
                else:
                    if result.on_disk is not None:
                        log.info("Kiro changed %s during the refresh; using Kiro's login instead", new.source)
                        new, adopted_from_disk = result.on_disk, True
                    elif not result.written:
                        log.warning("%s vanished or became unreadable during the refresh; not rewriting it", new.source)
            with self._lock:
                if adopted_from_disk:
                    self._adopt(new)
                else:
                    self._record = new
                    self._failure = None
                    self._retry_at = None
                    self._failed_in_a_row = 0
                self._attempts += 1
        if new.origin == "environment":
            save_environment_login(self._settings, new)  # so a restart with the same tokens needs no new ones
        expiry = f"{new.expires_at:%H:%M:%S} UTC" if new.expires_at else "an unknown time"
        log.info("Renewed the Kiro token (%s login); it expires at %s", new.auth_kind, expiry)
        self._publish()
        return new

    async def _credentials_for(self, http: httpx.AsyncClient, record: TokenRecord) -> Credentials:
        arn, arn_from = self._arns.known(record)
        if arn_from == "unknown":
            async with self._refresh_lock():
                arn, arn_from = self._arns.known(record)
                if arn_from == "unknown":
                    arn, arn_from = await self._arns.find(http, record)
                    self._publish()
        return Credentials(
            access_token=record.access_token,
            profile_arn=arn,
            region=self._settings.region_for(arn if arn_from not in ("", "placeholder") else None),
            auth_kind=record.auth_kind,
            expires_at=record.expires_at,
            label=login_label(record),
            arn_from=arn_from,
            identity=login_identity(record),
        )

    async def recheck_profile(self, http: httpx.AsyncClient, rejected: Credentials) -> Credentials | None:
        """After `403 User is not authorized`: look the ARN up again (2026 §2.3, §7). New credentials when
        Kiro now lists a different profile; None when nothing changed (then it is not an ARN problem)."""
        if (
            rejected.arn_from not in ("profile.json", "ListAvailableProfiles", "unknown")
            or rejected.auth_kind == "api_key"
        ):
            return None
        record, _, _ = self._snapshot()
        if record is None or login_identity(record) != rejected.identity:
            return None
        async with self._refresh_lock():
            self._arns.forget()
            arn, _ = await self._arns.find(http, record, listed_only=True)
        if arn is None or arn == rejected.profile_arn:
            return None
        log.info("Kiro lists another profile for this login (%s); retrying with it", mask_arn(arn))
        return await self._credentials_for(http, record)

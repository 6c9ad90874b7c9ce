"""TokenStore: the current Kiro login, how healthy it is, and renewing it (single flight) with write-back.

The file is read on start and whenever the watcher says it changed; a request that needs a token with
little life left, or one Kiro just rejected, triggers at most one refresh at a time. A KIRO_ACCESS_TOKEN /
KIRO_REFRESH_TOKEN seed is used only while the token file does not exist, and is never written anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NoReturn

import httpx

from ..config import Settings
from ..core.errors import KiroLoginRequired, KiroUnavailable
from ..state import TokenStatus
from .token_file import (
    ClientRegistration,
    TokenFileError,
    TokenRecord,
    read_profile_arn,
    read_registration,
    read_token_file,
    registration_path,
    token_from_environment,
    write_back,
)
from .token_health import token_status
from .token_refresh import first_profile_arn, refresh_login

log = logging.getLogger(__name__)

# After the login service could not be reached, a token that still works is used for this long before
# the next attempt, so an outage does not add a refresh timeout to every request.
REFRESH_RETRY_DELAY = timedelta(seconds=30)


def _extra_headers(auth_kind: str) -> dict[str, str]:
    # Kiro accepts an external IdP's token only with this marker (kiro-protocol.md §2.3).
    return {"TokenType": "EXTERNAL_IDP"} if auth_kind == "external_idp" else {}


@dataclass(frozen=True)
class Credentials:
    """What one API call needs: the bearer token, the profile ARN and the API region."""

    access_token: str = field(repr=False)
    profile_arn: str
    region: str  # API region: settings.region_for(profile_arn)
    auth_kind: str  # "social" | "idc" | "external_idp" | "environment"
    expires_at: datetime | None

    @property
    def extra_headers(self) -> dict[str, str]:
        return _extra_headers(self.auth_kind)


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
        self._environment = token_from_environment(settings.access_token, settings.refresh_token)
        self._unreadable = False
        self._failure: _Failure | None = None
        self._retry_at: datetime | None = None
        self._attempts = 0  # finished refresh attempts; a waiter that sees it move shares that outcome
        self._found_arn: str | None = None  # from profile.json or ListAvailableProfiles
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
        """Re-read the token file (watcher thread, startup). A half-written file never logs anyone out."""
        with self._file_lock:
            try:
                record = read_token_file(self._settings.token_file)
            except TokenFileError as exc:
                log.warning("Kiro's token file is unusable right now, keeping the last good login: %s", exc)
                with self._lock:
                    self._unreadable = True
            else:
                with self._lock:
                    self._unreadable = False
                    self._adopt(record if record is not None else self._environment)
        return self._publish()

    def status(self) -> TokenStatus:
        """The current health, re-evaluated against the clock; `on_status` hears about any change."""
        return self._publish()

    def describe(self) -> str:
        """A few lines for `ki2api-tray status`: where the login comes from and how it is doing."""
        status = self.status()
        with self._lock:
            arn = (self._record.profile_arn if self._record else None) or self._found_arn
        lines = [
            f"Token source: {status.source}",
            f"Login kind:   {status.auth_kind or 'none'}",
            f"Health:       {status.health.value} ({status.detail})",
        ]
        if status.expires_at is not None:
            lines.append(f"Expires at:   {status.expires_at.astimezone():%Y-%m-%d %H:%M:%S %Z}")
        if arn:
            lines.append(f"Profile ARN:  {arn}")
        return "\n".join(lines)

    def _adopt(self, record: TokenRecord | None) -> None:
        """Use a login read from disk or the environment (caller holds `_lock`)."""
        if record is not None and record.same_tokens(self._record):
            self._record = record
            return
        # A different login (or Kiro's own refresh) clears a failure that belonged to the old one, and
        # the profile looked up for it: profile.json may have changed with it.
        self._record = record
        self._failure = None
        self._retry_at = None
        self._found_arn = None

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
        return token_status(
            self._record,
            token_file=self._settings.token_file,
            now=now,
            margin=self._margin,
            unreadable=self._unreadable,
            failure=self._failure.error.message if self._failure is not None else None,
        )

    def _missing_error(self) -> KiroLoginRequired:
        path = self._settings.token_file
        with self._lock:
            unreadable = self._unreadable
        if unreadable:
            return KiroLoginRequired(f"The Kiro token file {path} cannot be read: open Kiro and sign in again")
        return KiroLoginRequired(f"No Kiro login found at {path}: open Kiro and sign in")

    def _needs_refresh(self, record: TokenRecord, now: datetime) -> bool:
        """Whether a request should renew `record` before using it (caller holds `_lock`)."""
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
        record, stale, seen = self._snapshot()
        if record is None:
            await asyncio.to_thread(self.reload)
            record, stale, seen = self._snapshot()
            if record is None:
                raise self._missing_error()
        if stale:
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
        _, _, seen = self._snapshot()
        async with self._refresh_lock():
            record, stale, attempts = self._snapshot()
            if record is None or record.access_token == rejected.access_token or stale:
                if attempts != seen:
                    self._raise_failure_of_shared_attempt()
                record = await self._refresh(http, record, rejected=rejected.access_token)
        return await self._credentials_for(http, record)

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
        if record.auth_kind != "idc" or record.source is None:
            return None
        if not record.client_id_hash:
            raise KiroLoginRequired("The Kiro login has no clientIdHash, so it cannot be renewed: log in to Kiro again")
        try:
            path = registration_path(record.source, record.client_id_hash)
            registration = read_registration(record.source, record.client_id_hash)
        except TokenFileError as exc:
            raise KiroLoginRequired(f"{exc}: log in to Kiro again") from None
        if registration is None:
            raise KiroLoginRequired(f"Kiro's client registration {path} is missing: log in to Kiro again")
        if registration.expires_at is not None and registration.expires_at <= self._clock():
            raise KiroLoginRequired(
                f"Kiro's client registration expired on {registration.expires_at:%Y-%m-%d}: log in to Kiro again"
            )
        return registration

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
                self._retry_at = None if isinstance(error, KiroLoginRequired) else now + REFRESH_RETRY_DELAY
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
            if new.source is not None:
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
                if new.source is None:
                    self._environment = new
                self._unreadable = False
                self._attempts += 1
        expiry = f"{new.expires_at:%H:%M:%S} UTC" if new.expires_at else "an unknown time"
        log.info("Renewed the Kiro token (%s login); it expires at %s", new.auth_kind, expiry)
        self._publish()
        return new

    async def _credentials_for(self, http: httpx.AsyncClient, record: TokenRecord) -> Credentials:
        arn = record.profile_arn or self._known_arn()
        if arn is None:
            async with self._refresh_lock():
                arn = self._known_arn() or await self._find_profile_arn(http, record)
        return Credentials(
            access_token=record.access_token,
            profile_arn=arn,
            region=self._settings.region_for(arn),
            auth_kind=record.auth_kind,
            expires_at=record.expires_at,
        )

    def _known_arn(self) -> str | None:
        with self._lock:
            return self._found_arn

    async def _find_profile_arn(self, http: httpx.AsyncClient, record: TokenRecord) -> str:
        """IdC and external IdP tokens carry no profile ARN; Kiro keeps the chosen one in profile.json (§1.4)."""
        profile_file = self._settings.profile_file
        arn = await asyncio.to_thread(read_profile_arn, profile_file)
        if arn is None:
            arn = await first_profile_arn(http, self._settings, record.access_token, _extra_headers(record.auth_kind))
        if arn is None:
            raise KiroLoginRequired(
                f"No Kiro profile found: the login names none, {profile_file} does not exist and Kiro listed none. "
                "Open Kiro, choose a profile, and try again"
            )
        with self._lock:
            if record.same_tokens(self._record):
                self._found_arn = arn
        return arn

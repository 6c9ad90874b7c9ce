"""AccountPool: every Kiro account ki2api may use (issue #14), which one a request tries first, and how
each one looks to the person.

The login found automatically comes first, then config.json `accounts` in their order (design.md §3).
Each account is one `TokenStore` over a narrowed copy of the settings, so every login kind, refresh and
account signal (kiro-protocol-2026.md §7) works exactly as for a single login. Routing is priority order
(or round-robin for new conversations), a conversation stays on the account that last served it while that
account is usable, and a token bucket per account keeps a pool from bursting past Kiro's limits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..config import AccountSpec, Settings
from ..state import AccountStatus, Quota, TokenHealth, TokenStatus
from .tokens import TokenStore

log = logging.getLogger(__name__)

AUTOMATIC = "automatic"  # the name of the login found without config.json `accounts`
BURST = 10  # requests one account may start back to back before pacing sets in
AFFINITY_SIZE = 2048  # conversations remembered; the oldest are forgotten first
# An account in one of these states is not tried (it fails without asking Kiro); another one is.
_UNUSABLE = (TokenHealth.MISSING, TokenHealth.UNREADABLE, TokenHealth.SUSPENDED)


class Pacer:
    """A token bucket: `per_minute` requests a minute on average, up to BURST at once; `delay()` reserves one."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._clock = clock
        self._tokens = float(BURST)
        self._at = clock()
        self._lock = threading.Lock()

    def delay(self) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(BURST), self._tokens + (now - self._at) * self._rate)
            self._at = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    async def wait(self) -> None:
        delay = self.delay()
        if delay > 0:
            log.info("pacing: waiting %.1f s before the next request on this Kiro account", delay)
            await asyncio.sleep(delay)


@dataclass
class Account:
    name: str
    tokens: TokenStore
    pacer: Pacer
    token: TokenStatus = field(default_factory=lambda: TokenStatus(TokenHealth.MISSING))
    quota: Quota | None = None


def account_settings(settings: Settings, spec: AccountSpec) -> Settings:
    """The settings one listed account's `TokenStore` sees: only its own login source."""
    base = replace(settings, accounts=(), access_token=None, refresh_token=None, profile_arn=None, kiro_cli_key=None)
    if spec.token_file is not None:
        # Kiro's profile.json belongs to the IDE's login; another file's profile is asked of Kiro, or read from
        # a `<name>.profile.json` beside it.
        profile = spec.token_file.with_name(spec.token_file.stem + ".profile.json")
        return replace(base, token_file=spec.token_file, profile_file=profile, login_sources="token_file")
    if spec.kiro_api_key:
        return replace(base, kiro_api_key=spec.kiro_api_key, login_sources="api_key")
    assert spec.kiro_cli_db is not None
    return replace(base, kiro_cli_db=spec.kiro_cli_db, login_sources="kiro_cli")


def _duplicates_automatic(settings: Settings, spec: AccountSpec) -> bool:
    return (
        (spec.token_file is not None and spec.token_file == settings.token_file)
        or (spec.kiro_cli_db is not None and spec.kiro_cli_db == settings.kiro_cli_db)
        or (spec.kiro_api_key is not None and spec.kiro_api_key == settings.kiro_api_key)
    )


class AccountPool:
    """The accounts, their published health, and the routing order. Thread-safe; no network I/O here."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_token: Callable[[TokenStatus], None] | None = None,
        on_accounts: Callable[[tuple[AccountStatus, ...]], None] | None = None,
        stores: list[tuple[str, TokenStore]] | None = None,
    ) -> None:
        self.settings = settings
        self._on_token = on_token
        self._on_accounts = on_accounts
        self._lock = threading.Lock()
        self._affinity: OrderedDict[str, str] = OrderedDict()
        self._turn = 0
        self._in_use = ""
        self._published: tuple[TokenStatus | None, tuple[AccountStatus, ...]] = (None, ())
        specs = settings.accounts
        named = stores or []
        if not named:
            if not any(_duplicates_automatic(settings, spec) for spec in specs):
                named.append((AUTOMATIC, TokenStore(settings, on_status=self._hook(AUTOMATIC))))
            for spec in specs:
                named.append((spec.name, TokenStore(account_settings(settings, spec), on_status=self._hook(spec.name))))
        self.accounts = [Account(name, store, Pacer(settings.account_requests_per_minute)) for name, store in named]

    @classmethod
    def single(cls, settings: Settings, tokens: TokenStore) -> AccountPool:
        """One existing store as a pool of one (tests and callers that built their own store)."""
        return cls(settings, stores=[(AUTOMATIC, tokens)])

    @property
    def pooled(self) -> bool:
        return len(self.accounts) > 1

    @property
    def primary(self) -> TokenStore:
        return self.accounts[0].tokens

    def _hook(self, name: str) -> Callable[[TokenStatus], None]:
        def heard(status: TokenStatus) -> None:
            for account in self.accounts if hasattr(self, "accounts") else ():
                if account.name == name:
                    account.token = status
            self._publish()

        return heard

    # --- health --------------------------------------------------------------------------------------

    def reload(self) -> TokenStatus:
        """Re-read every account's login (watcher, health timer); the status of the account in use."""
        for account in self.accounts:
            account.token = account.tokens.reload()
            account.tokens.blocked()  # lets an expired cooldown or quota block lift
            account.token = account.tokens.status()
        return self._publish()

    def quota_changed(self, name: str, quota: Quota) -> None:
        for account in self.accounts:
            if account.name == name:
                account.quota = quota
        self._publish()

    def current(self) -> Account:
        """The account serving now: the last one that answered while usable, else the first usable one."""
        with self._lock:
            in_use = self._in_use
        usable = [a for a in self.accounts if self._usable(a)]
        for account in usable:
            if account.name == in_use:
                return account
        return usable[0] if usable else self.accounts[0]

    def statuses(self) -> tuple[AccountStatus, ...]:
        current = self.current().name
        return tuple(AccountStatus(a.name, a.token, a.quota, a.name == current) for a in self.accounts)

    def _publish(self) -> TokenStatus:
        if not hasattr(self, "accounts"):
            return TokenStatus(TokenHealth.MISSING)
        current = self.current()
        published = (current.token, self.statuses())
        with self._lock:
            changed = published != self._published
            self._published = published
        if changed:
            if self._on_token is not None:
                self._on_token(current.token)
            if self._on_accounts is not None:
                self._on_accounts(published[1])
        return current.token

    @staticmethod
    def _usable(account: Account) -> bool:
        if account.tokens.blocked() is not None:
            return False
        return account.token.health not in _UNUSABLE

    # --- routing -------------------------------------------------------------------------------------

    def order(self, affinity: str) -> list[Account]:
        """The accounts to try for one request, best first: the conversation's own account while usable,
        then the usable ones by priority (or rotated, for round-robin), then the rest, which fail at once
        with their own reason (so a request that no account can serve says why)."""
        usable = [a for a in self.accounts if self._usable(a)]
        rest = [a for a in self.accounts if a not in usable]
        with self._lock:
            owner = self._affinity.get(affinity) if affinity else None
            # Only a request's own order turns the wheel (affinity ""; the credentials look-up does not count).
            if self.settings.account_routing == "round_robin" and usable and affinity and owner is None:
                start = self._turn % len(usable)
                self._turn += 1
                usable = usable[start:] + usable[:start]
        if owner is not None:
            usable.sort(key=lambda a: a.name != owner)  # stable: the owner first, the rest keep their order
        return usable + rest

    def served(self, account: Account, affinity: str) -> None:
        """`account` started answering: the conversation stays with it, and it is the one in use."""
        with self._lock:
            if affinity:
                self._affinity[affinity] = account.name
                self._affinity.move_to_end(affinity)
                while len(self._affinity) > AFFINITY_SIZE:
                    self._affinity.popitem(last=False)
            changed = self._in_use != account.name
            self._in_use = account.name
        if changed:
            if self.pooled:
                log.info("Kiro account %s is answering now", account.name)
            self._publish()

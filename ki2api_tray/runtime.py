"""What one process runs, wired together: settings, state, the token store and the service.

Kept apart from `app` (the command line) so the self-test can build the same runtime without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .api.server import create_app
from .config import Settings
from .kiro import tls
from .kiro.account_pool import AccountPool
from .kiro.tokens import TokenStore
from .service import ProxyService
from .state import AccountStatus, AppState
from .usage.store import UsageStore


@dataclass
class Runtime:
    """Everything one process runs, wired together."""

    settings: Settings
    state: AppState
    tokens: TokenStore  # the first account's login (the automatic one unless config.json replaces it)
    service: ProxyService
    pool: AccountPool | None = None
    usage: UsageStore | None = None


def build_runtime(settings: Settings) -> Runtime:
    tls.prepare()  # the CA bundle loads on another core while the rest of the start goes on
    state = AppState()
    usage = (
        UsageStore(settings.app_paths.state_dir, retention_days=settings.usage_days) if settings.usage_days else None
    )
    service: ProxyService  # assigned below; the token store reports through it once it exists

    def show_accounts(accounts: tuple[AccountStatus, ...]) -> None:
        state.update(accounts=accounts)

    pool = AccountPool(
        settings,
        on_token=lambda status: service.reporter.token_changed(status),
        on_accounts=show_accounts,
    )
    service = ProxyService(
        settings,
        state,
        app_factory=lambda reporter: create_app(settings, pool, reporter, state.snapshot, usage=usage),
        token_reload=pool.reload,
        usage=usage,
    )
    return Runtime(settings=settings, state=state, tokens=pool.primary, service=service, pool=pool, usage=usage)

"""What one process runs, wired together: settings, state, the token store and the service.

Kept apart from `app` (the command line) so the self-test can build the same runtime without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .api.server import create_app
from .config import Settings
from .kiro.tokens import TokenStore
from .service import ProxyService
from .state import AppState
from .usage.store import UsageStore


@dataclass
class Runtime:
    """Everything one process runs, wired together."""

    settings: Settings
    state: AppState
    tokens: TokenStore
    service: ProxyService
    usage: UsageStore | None = None


def build_runtime(settings: Settings) -> Runtime:
    state = AppState()
    usage = (
        UsageStore(settings.app_paths.state_dir, retention_days=settings.usage_days) if settings.usage_days else None
    )
    service: ProxyService  # assigned below; the token store reports through it once it exists
    tokens = TokenStore(settings, on_status=lambda status: service.reporter.token_changed(status))
    service = ProxyService(
        settings,
        state,
        app_factory=lambda reporter: create_app(settings, tokens, reporter, state.snapshot, usage=usage),
        token_reload=tokens.reload,
        usage=usage,
    )
    return Runtime(settings=settings, state=state, tokens=tokens, service=service, usage=usage)

"""`ki2api-tray status`: is a server running, is the Kiro login usable, how much quota is left, where files are.

Plain text for people, `--json` for scripts, and an exit code a script can branch on: 0 all is well,
1 no usable Kiro login, 2 no server answering. The running server is asked over HTTP (`/health`); the
quota comes from it, or from Kiro directly when no server runs. Never prints a token.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import __version__
from .config import Settings
from .i18n import Translator
from .kiro.tokens import TokenStore
from .kiro.upstream import KiroClient
from .state import Quota, TokenHealth, TokenStatus
from .usage.store import FILE_NAME
from .wording import quota_line

HEALTHY, NO_LOGIN, NO_SERVER = 0, 1, 2
PROBE_TIMEOUT = 3.0
QUOTA_TIMEOUT = 15.0
USABLE = (TokenHealth.VALID, TokenHealth.EXPIRING)


@dataclass
class StatusReport:
    settings: Settings
    token: TokenStatus
    login_details: str
    server: dict[str, Any] | None = None  # the running server's /health answer
    quota: Quota | None = None
    quota_error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def login_usable(self) -> bool:
        token = self.token
        return token.health in USABLE or (token.health is TokenHealth.EXPIRED and token.renewable)

    @property
    def exit_code(self) -> int:
        if not self.login_usable:
            return NO_LOGIN
        return HEALTHY if self.server is not None else NO_SERVER

    @property
    def root_url(self) -> str:
        return self.settings.base_url.removesuffix("/v1")

    def as_text(self) -> str:
        settings, paths = self.settings, self.settings.app_paths
        if self.server is not None:
            version = self.server.get("version", "?")
            server = f"running at {self.root_url} (ki2api {version}); status page {self.root_url}/"
        else:
            server = f"not running (nothing answers at {self.root_url})"
        key = (
            f"{settings.api_key} (the public default)"
            if settings.uses_default_key
            else "custom (not shown; it is the api_key in config.json or the API_KEY variable)"
        )
        quota = quota_line(self.quota, Translator("en")).removeprefix("Quota: ")
        if self.quota is not None and self.quota.subscription:
            quota += f" ({self.quota.subscription})"
        if self.quota is None and self.quota_error:
            quota = f"unknown ({self.quota_error})"
        lines = [
            f"ki2api-tray {__version__}",
            f"Server:      {server}",
            f"API:         {settings.base_url}",
            f"API key:     {key}",
            f"Quota:       {quota}",
            f"Config file: {paths.config_file}{'' if paths.config_file.exists() else '  (not created yet)'}",
            f"Log file:    {paths.log_file}",
            f"Usage file:  {paths.state_dir / FILE_NAME}",
            "",
            self.login_details,
        ]
        return "\n".join(lines)

    def as_json(self) -> str:
        settings, paths, token = self.settings, self.settings.app_paths, self.token
        body = {
            "version": __version__,
            "exit_code": self.exit_code,
            "server": {
                "running": self.server is not None,
                "url": self.root_url,
                "version": self.server.get("version") if self.server else None,
            },
            "api": {
                "base_url": settings.base_url,
                "key": settings.api_key if settings.uses_default_key else None,
                "key_is_default": settings.uses_default_key,
            },
            "login": {
                "usable": self.login_usable,
                "health": token.health.value,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
                "auth_kind": token.auth_kind,
                "source": token.source,
                "detail": token.detail,
            },
            "quota": None if self.quota is None else _quota_json(self.quota),
            "quota_error": self.quota_error or None,
            "files": {
                "config": str(paths.config_file),
                "log": str(paths.log_file),
                "usage": str(paths.state_dir / FILE_NAME),
            },
        }
        return json.dumps(body, indent=2, ensure_ascii=False)


def status_report(settings: Settings) -> StatusReport:
    tokens = TokenStore(settings)
    token = tokens.reload()
    report = StatusReport(settings, token, tokens.describe())
    report.server = probe_server(settings)
    served = report.server.get("quota") if report.server else None
    if isinstance(served, dict) and served.get("limit"):
        report.quota = _quota_from(served)
    elif report.login_usable:
        try:
            report.quota = asyncio.run(_ask_kiro_for_quota(settings, tokens))
        except Exception as exc:  # noqa: BLE001 - any failure is a line in the report, not a crash
            report.quota_error = getattr(exc, "message", None) or type(exc).__name__
    return report


def probe_server(settings: Settings) -> dict[str, Any] | None:
    """The running server's /health answer, or None when nothing (or not ki2api) answers."""
    url = settings.base_url.removesuffix("/v1") + "/health"
    try:
        response = httpx.get(url, headers={"x-api-key": settings.api_key}, timeout=PROBE_TIMEOUT, trust_env=False)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if response.status_code == 200 and isinstance(body, dict) and "version" in body else None


async def _ask_kiro_for_quota(settings: Settings, tokens: TokenStore) -> Quota:
    async with httpx.AsyncClient(timeout=QUOTA_TIMEOUT, trust_env=True) as http:
        return await KiroClient(settings, tokens, http).quota()


def _quota_from(data: dict[str, Any]) -> Quota:
    from datetime import datetime

    resets = data.get("resets_at")
    return Quota(
        subscription=str(data.get("subscription") or ""),
        used=float(data.get("used") or 0),
        limit=float(data.get("limit") or 0),
        resets_at=datetime.fromisoformat(resets) if isinstance(resets, str) else None,
        overage=str(data.get("overage") or ""),
    )


def _quota_json(quota: Quota) -> dict[str, Any]:
    return {
        "subscription": quota.subscription,
        "used": quota.used,
        "limit": quota.limit,
        "remaining": quota.remaining,
        "resets_at": quota.resets_at.isoformat() if quota.resets_at else None,
        "overage": quota.overage,
    }

"""The request guard: which `Host` and `Origin` values may reach any route, and CORS for the allowed ones.

ki2api listens on loopback with a public default key, on a machine that runs a web browser. A web page
can rebind its own name to 127.0.0.1 and become same-origin with ki2api, or simply post to it; the guard
stops both before routing, so no route (present or future) can be reached from such a page:

- while listening on loopback, the `Host` must name this machine (or be in `KI2API_ALLOWED_HOSTS`);
- a request with an `Origin` is served only for loopback pages, desktop-app and extension schemes and
  `KI2API_ALLOWED_ORIGINS`. Those get CORS answers (Starlette's `CORSMiddleware`, fed the same rule).

A refusal is a 403 in the called API's error shape, built by the server's own error renderer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..core.errors import Ki2apiError

# Names a browser only sends for a page served by this machine itself.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
_LOCAL_SET = frozenset(LOCAL_HOSTS)
_LOOPBACK_ORIGIN = r"https?://(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?"
# Desktop apps (Electron, Tauri, VS Code webviews) and browser extensions: a web page cannot use these.
APP_SCHEMES = (
    "app",
    "tauri",
    "vscode-webview",
    "vscode-file",
    "chrome-extension",
    "moz-extension",
    "safari-web-extension",
    "file",
)
_APP_ORIGIN = rf"({'|'.join(re.escape(s) for s in APP_SCHEMES)})://[^\s]*"


def _wildcards(entries: str) -> list[str]:
    """`a.example, *.lan` -> regex alternatives in which only `*` is special."""
    found = []
    for entry in entries.split(","):
        entry = entry.strip().lower()
        if entry:
            found.append(".*".join(re.escape(piece) for piece in entry.split("*")))
    return found


@dataclass(frozen=True)
class GuardPolicy:
    """The allow rules, compiled once per app from the settings."""

    check_host: bool
    hosts: re.Pattern[str]
    origins: re.Pattern[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardPolicy:
        extra_hosts = _wildcards(settings.allowed_hosts)
        hosts = [re.escape(h) for h in LOCAL_HOSTS] + extra_hosts
        origins = [_LOOPBACK_ORIGIN, _APP_ORIGIN, *_wildcards(settings.allowed_origins)]
        return cls(
            # Off loopback (Docker, LAN) the Host names are not known in advance, unless the user lists them. The
            # public default key off loopback is only allowed behind a port published on loopback: check as there.
            check_host=settings.on_loopback or bool(extra_hosts) or settings.default_key_off_loopback,
            hosts=re.compile("|".join(hosts), re.IGNORECASE),
            origins=re.compile("|".join(f"(?:{o})" for o in origins), re.IGNORECASE),
        )

    def host_allowed(self, host: str | None) -> bool:
        # No browser omits Host; a bare HTTP/1.0 client from this machine may.
        if not self.check_host or not host:
            return True
        name = host_name(host)
        return name in _LOCAL_SET or self.hosts.fullmatch(name) is not None

    def origin_allowed(self, origin: str | None) -> bool:
        # "null" (sandboxed frames, data: pages) is deliberately not allowed: any web page can produce it.
        return origin is None or self.origins.fullmatch(origin.strip()) is not None


def host_name(host: str) -> str:
    """The name part of a `Host` header: `[::1]:8989` -> `[::1]`, `localhost:8989` -> `localhost`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    name, _, port = host.rpartition(":")
    if name and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".")  # "localhost." is the same name


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


class RequestGuard:
    """ASGI middleware in front of every route; `refuse` renders an error in the called API's shape."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: GuardPolicy,
        refuse: Callable[[Request, Ki2apiError], Response],
    ) -> None:
        self._policy = policy
        self._refuse = refuse
        self._cors = CORSMiddleware(
            app,
            allow_origin_regex=policy.origins.pattern,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            allow_private_network=True,  # Chrome asks before a public page talks to loopback
            max_age=600,
        )
        # CORSMiddleware compiles the pattern case-sensitively; hand it ours, which ignores case.
        self._cors.allow_origin_regex = policy.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._cors(scope, receive, send)
            return
        headers = Headers(scope=scope)
        error = self._refusal(headers)
        if error is not None:
            await self._refuse(Request(scope), error)(scope, receive, send)
            return
        await self._cors(scope, receive, send)

    def _refusal(self, headers: Headers) -> Ki2apiError | None:
        host = headers.get("host")
        if not self._policy.host_allowed(host):
            return Ki2apiError(
                f"ki2api answers only requests addressed to this machine (localhost, 127.0.0.1, [::1]), "
                f"not to '{_shown(host or '')}'. If you reach it under that name on purpose, add the name to "
                "KI2API_ALLOWED_HOSTS.",
                code="host_not_allowed",
                status=403,
                kind="permission_error",
            )
        origin = headers.get("origin")
        if not self._policy.origin_allowed(origin):
            return Ki2apiError(
                f"Web pages from {_shown(origin or '')} may not use ki2api. To allow a browser-based client, "
                "set KI2API_ALLOWED_ORIGINS to its origin (comma-separated, * wildcards) and restart ki2api.",
                code="origin_not_allowed",
                status=403,
                kind="permission_error",
            )
        return None

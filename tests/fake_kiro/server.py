"""The fake Kiro backend: two loopback HTTP servers playing every Kiro host ki2api talks to.

`base_url`: runtime (`/generateAssistantResponse`), management (`/ListAvailableModels`, `/getUsageLimits`,
`/ListAvailableProfiles`), Kiro auth (`/refreshToken`), SSO-OIDC (`/token`) and an external IdP
(`/oauth2/token`) share one base URL, so those URL settings can all point at it (kiro-protocol.md §11).
`q_url`: the AWS surface (aws_surface.py), a separate server, because since 2026 which host takes which
login is the point (kiro-protocol-2026.md §1). Every request is recorded; chat requests are validated like
the real service (validation.py, host_rules.py) and answered by a scripted reply or scenarios.reply_for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import catalog, scenarios
from .accounts import Account, Accounts
from .aws_surface import AwsSurface
from .host_rules import (
    FEATURE_NOT_AUTHORIZED,
    HostRules,
    account_signals,
    runtime_accepts,
    top_level_fields,
)
from .listener import Listener, QuietAbort
from .replies import ErrorReply, Reply, StreamReply
from .validation import (
    BAD_BEARER,
    IMPROPER,
    Limits,
    Rejected,
    ValidChat,
    check_bearer,
    check_profile_arn,
    parse_body,
    validate_chat,
)

CHAT_PATH = "/generateAssistantResponse"
REFRESH_PATHS = frozenset({"/refreshToken", "/token", "/oauth2/token"})
EVENT_STREAM = "application/vnd.amazon.eventstream"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
INVALID_GRANT = {"error": "invalid_grant", "error_description": "Invalid refresh token provided"}
INVALID_CLIENT = {"error": "invalid_client", "error_description": "Invalid client credentials"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived. Header names are lower-case; `json` is None when the body was not JSON."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Any
    body_size: int
    host: str = "runtime"  # "runtime" (base_url) or "q" (q_url)
    region: str = ""  # the AWS surface's region prefix

    @property
    def operation(self) -> str:
        """The JSON-1.0 operation of an AWS-surface `POST /`, or the path's last part."""
        target = self.headers.get("x-amz-target", "")
        if self.host == "q" and target.startswith("AmazonCodeWhispererService."):
            return target.split(".", 1)[1]
        return self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Rejection:
    """A request the fake refused, with the rule that fired (the body is what the client saw)."""

    path: str
    status: int
    body: Mapping[str, Any]
    detail: str


class StreamAborted(Exception):
    """Raised inside a body iterator so uvicorn drops the connection without finishing the chunked body."""


def _json_or_none(raw: bytes) -> Any:
    try:
        return parse_body(raw)
    except Rejected:
        return None


class FakeKiro:
    """State and routes of the fake. Thread-safe: the server thread and the test thread both use it.

    Tests drive it with `script()`, `fail_next()`, `accounts` and `limits`, and read `requests`.
    """

    def __init__(self, base_url: str = "", q_base: str = "") -> None:
        self.base_url = base_url
        # `{region}` is filled in by the client, like KIRO_Q_URL; the fake serves every region.
        self.q_url = f"{q_base}/{{region}}" if q_base else ""
        self.accounts = Accounts(base_url)
        self.limits = Limits()
        self.rules = HostRules()
        self.requests: list[RecordedRequest] = []
        self.rejections: list[Rejection] = []
        self.tcp_nodelay: list[bool] = []
        # Chat streams that stopped before their last write because the client went away.
        self.aborted_streams = 0
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._failures: dict[str, deque[ErrorReply]] = {}
        self.app = Starlette(
            routes=[
                Route(CHAT_PATH, self._chat, methods=["POST"]),
                Route("/refreshToken", self._refresh_social, methods=["POST"]),
                Route("/token", self._refresh_oidc, methods=["POST"]),
                Route("/oauth2/token", self._refresh_external, methods=["POST"]),
                Route("/ListAvailableModels", self._models, methods=["GET"]),
                Route("/getUsageLimits", self._usage, methods=["GET"]),
                Route("/ListAvailableProfiles", self._profiles, methods=["POST"]),
                Route("/{rest:path}", self._unknown, methods=_ALL_METHODS),
            ]
        )
        self.q_app = AwsSurface(self).app

    # ---- test-facing API -------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next valid generateAssistantResponse calls (invalid ones do not consume)."""
        with self._lock:
            self._replies.extend(replies)

    def fail_next(self, path: str, status: int, body: Mapping[str, Any], times: int = 1) -> None:
        """Answer the next `times` requests to `path` with this status and JSON body, before any validation.

        `path` is a runtime-host path, or "q:" + a path on the AWS surface without its region ("q:/").
        """
        path = path if path.startswith("q:") else "/" + path.lstrip("/")
        with self._lock:
            self._failures.setdefault(path, deque()).extend([ErrorReply(status, dict(body))] * times)

    def stop_failing(self, path: str) -> None:
        """Drop the failures still queued for `path`: the service is back."""
        with self._lock:
            self._failures.pop("/" + path.lstrip("/"), None)

    def reset(self) -> None:
        """Forget requests, scripts, failures, accounts and limit changes (between tests)."""
        with self._lock:
            self.requests.clear()
            self.rejections.clear()
            self.tcp_nodelay.clear()
            self._replies.clear()
            self._failures.clear()
            self.aborted_streams = 0
        self.accounts.clear()
        self.limits = Limits()
        self.rules = HostRules()

    def chat_requests(self, host: str | None = None) -> list[RecordedRequest]:
        """Chat requests on either host (or only `host`: "runtime" or "q")."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(CHAT_PATH) and (host is None or r.host == host)]

    @property
    def refresh_count(self) -> int:
        """Refresh calls received (social, OIDC, external IdP), whatever their outcome: single flight means 1.

        `accounts.refresh_count` counts only the successful ones.
        """
        with self._lock:
            return sum(r.path in REFRESH_PATHS for r in self.requests)

    def note_connection(self, nodelay: bool) -> None:
        with self._lock:
            self.tcp_nodelay.append(nodelay)

    # ---- plumbing ------------------------------------------------------------------------------------

    async def _arrive(self, request: Request, host: str = "runtime") -> tuple[bytes, Response | None]:
        """Record the request; return its body and a scripted failure if one is due for this path.

        Failures for the AWS surface are queued under "q:" + the path without the region, e.g.
        "q:/generateAssistantResponse" or "q:/" (every JSON-1.0 operation).
        """
        raw = await request.body()
        region = str(request.path_params.get("region", "")) if host == "q" else ""
        path = request.url.path
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=_json_or_none(raw),
            body_size=len(raw),
            host=host,
            region=region,
        )
        rest = path[len(region) + 1 :] if region else path
        key = path if host == "runtime" else "q:" + (rest or "/")
        with self._lock:
            self.requests.append(record)
            queue = self._failures.get(key)
            failure = queue.popleft() if queue else None
        return raw, (JSONResponse(dict(failure.body), failure.status) if failure else None)

    def _reject(self, request: Request, rejected: Rejected) -> JSONResponse:
        with self._lock:
            self.rejections.append(Rejection(request.url.path, rejected.status, rejected.body, rejected.detail))
        return JSONResponse(rejected.body, rejected.status)

    def _headers(self, request: Request) -> dict[str, str]:
        return {k.lower(): v for k, v in request.headers.items()}

    # ---- generateAssistantResponse (§3, §5, §6) ------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        raw, failure = await self._arrive(request)
        if failure:
            return failure
        try:
            valid = validate_chat(
                self._headers(request),
                raw,
                self.accounts,
                self.limits,
                access=self._runtime_access,
                body_check=top_level_fields,
            )
        except Rejected as rejected:
            return self._reject(request, rejected)
        return await self._answer_chat(valid)

    def _runtime_access(self, account: Account, headers: Mapping[str, str]) -> None:
        runtime_accepts(account, headers, self.rules)
        account_signals(account)

    async def _answer_chat(self, valid: ValidChat) -> Response:
        """The scripted reply, or the default one, for a chat that passed every rule of its host."""
        with self._lock:
            scripted = self._replies.popleft() if self._replies else None
        reply = scripted or scenarios.reply_for(valid.body)
        if isinstance(reply, ErrorReply):
            return JSONResponse(dict(reply.body), reply.status, headers=dict(reply.headers))
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        headers = {"x-amzn-requestid": str(uuid.uuid4())}
        return StreamingResponse(self._stream(reply), media_type=EVENT_STREAM, headers=headers)

    async def _stream(self, reply: StreamReply) -> AsyncIterator[bytes]:
        finished = False
        try:
            for step in reply.plan():
                if isinstance(step, bytes):
                    yield step
                else:
                    await asyncio.sleep(step)
            finished = True
        finally:
            # Starlette cancels this generator when the client disconnects; count it so a test can see it.
            if not finished:
                with self._lock:
                    self.aborted_streams += 1
        if reply.disconnect_after_frames is not None:
            raise StreamAborted("scripted disconnect")

    # ---- web search over MCP (kiro-protocol-2026.md §6) ----------------------------------------------

    def mcp_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.host == "q" and r.path.endswith("/mcp")]

    # ---- token refresh (§2) --------------------------------------------------------------------------

    async def _refresh_social(self, request: Request) -> Response:
        """§2.1: JSON {refreshToken} -> new access token, rotated refresh token, expiresIn, profileArn."""
        raw, failure = await self._arrive(request)
        if failure:
            return failure
        body = _json_or_none(raw)
        if not request.headers.get("content-type", "").startswith("application/json") or body is None:
            return JSONResponse({"error": "invalid_request", "error_description": "JSON body required"}, 400)
        token = body.get("refreshToken")
        account = self.accounts.refresh_social(token) if isinstance(token, str) and token else None
        if account is None:
            return JSONResponse(INVALID_GRANT, 400)
        return JSONResponse(
            {
                "accessToken": account.access_token,
                "refreshToken": account.refresh_token,
                "expiresIn": 3600,
                "profileArn": account.profile_arn,
            }
        )

    async def _refresh_oidc(self, request: Request) -> Response:
        """§2.2: SSO-OIDC CreateToken with a camelCase JSON body (not form-encoded)."""
        raw, failure = await self._arrive(request)
        if failure:
            return failure
        body = _json_or_none(raw)
        if not request.headers.get("content-type", "").startswith("application/json") or body is None:
            return JSONResponse({"error": "invalid_request", "error_description": "JSON body required"}, 400)
        fields = [body.get(k) for k in ("clientId", "clientSecret", "refreshToken")]
        if not all(isinstance(f, str) and f for f in fields):
            return JSONResponse({"error": "invalid_request", "error_description": "missing parameter"}, 400)
        if body.get("grantType") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "grantType"}, 400)
        result = self.accounts.refresh_oidc(*[str(f) for f in fields])
        if isinstance(result, str):
            return JSONResponse(INVALID_CLIENT if result == "invalid_client" else INVALID_GRANT, 400)
        return JSONResponse(
            {
                "accessToken": result.access_token,
                "refreshToken": result.refresh_token,
                "expiresIn": 3600,
                "tokenType": "Bearer",
            }
        )

    async def _refresh_external(self, request: Request) -> Response:
        """§2.3: a form-encoded OAuth refresh answered in snake_case."""
        raw, failure = await self._arrive(request)
        if failure:
            return failure
        form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        account = self.accounts.refresh_external(form.get("client_id", ""), form.get("refresh_token", ""))
        if account is None:
            return JSONResponse(INVALID_GRANT, 400)
        return JSONResponse(
            {
                "access_token": account.access_token,
                "refresh_token": account.refresh_token,
                "expires_in": 3600,
                "token_type": "Bearer",
            }
        )

    # ---- management host (§4.3, §7) ------------------------------------------------------------------

    def _management_account(self, request: Request) -> Account:
        """Bearer as for chat; a KiroIDE user agent; origin=AI_EDITOR; the caller's own profileArn."""
        headers = self._headers(request)
        account = check_bearer(headers, self.accounts)
        if account.kind == "api_key":
            raise Rejected(BAD_BEARER, "the Kiro-side hosts refuse API keys (2026 §1.1)", status=403)
        account_signals(account)
        if "KiroIDE" not in headers.get("user-agent", ""):
            raise Rejected(IMPROPER, "User-Agent must name KiroIDE")
        if request.query_params.get("origin") != "AI_EDITOR":
            raise Rejected(IMPROPER, "origin=AI_EDITOR query parameter required")
        check_profile_arn({"profileArn": request.query_params.get("profileArn")}, account)
        return account

    async def _models(self, request: Request) -> Response:
        _, failure = await self._arrive(request)
        if failure:
            return failure
        try:
            account = self._management_account(request)
        except Rejected as rejected:
            return self._reject(request, rejected)
        page = catalog.models_page(request.query_params.get("nextToken"), self.limits.models_page_size, account.models)
        if page is None:
            return self._reject(request, Rejected(IMPROPER, "unknown nextToken"))
        return JSONResponse(page)

    async def _usage(self, request: Request) -> Response:
        _, failure = await self._arrive(request)
        if failure:
            return failure
        try:
            account = self._management_account(request)
            if request.query_params.get("resourceType", "AGENTIC_REQUEST") != "AGENTIC_REQUEST":
                raise Rejected(IMPROPER, "resourceType must be AGENTIC_REQUEST")
        except Rejected as rejected:
            return self._reject(request, rejected)
        with_email = request.query_params.get("isEmailRequired") == "true"
        return JSONResponse(catalog.usage_limits(account, with_email))

    async def _profiles(self, request: Request) -> Response:
        _, failure = await self._arrive(request)
        if failure:
            return failure
        try:
            account = check_bearer(self._headers(request), self.accounts)
            if account.builder_id or account.kind == "api_key":
                # 2026 §1.4: mgmt ListAvailableProfiles for a Builder ID (PIF #485; KAM-C #100).
                raise Rejected(FEATURE_NOT_AUTHORIZED, "Builder ID / key cannot list profiles", status=403)
        except Rejected as rejected:
            return self._reject(request, rejected)
        return JSONResponse(catalog.profiles(account))

    async def _unknown(self, request: Request) -> Response:
        # §4.3: a Kiro host answers an operation it does not serve with UnknownOperationException.
        _, failure = await self._arrive(request)
        return failure or JSONResponse({"message": "UnknownOperationException", "reason": None}, 404)


@contextmanager
def running_fake_kiro() -> Iterator[FakeKiro]:
    """Start the fake on 127.0.0.1 (random port) in a background thread; stop it on exit."""
    quiet = QuietAbort(StreamAborted)
    logging.getLogger("uvicorn.error").addFilter(quiet)
    listener, q_listener = Listener(), Listener()
    fake = FakeKiro(f"http://127.0.0.1:{listener.port}", f"http://127.0.0.1:{q_listener.port}")
    try:
        listener.start(fake.app, fake.note_connection)
        q_listener.start(fake.q_app, fake.note_connection)
        yield fake
    finally:
        q_listener.stop()
        listener.stop()
        logging.getLogger("uvicorn.error").removeFilter(quiet)

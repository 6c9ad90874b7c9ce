"""The fake's AWS surface: `q.{region}.amazonaws.com` / `codewhisperer.us-east-1` (kiro-protocol-2026.md §1.1, §1.4).

A second loopback server, apart from the runtime host, so a client must really pick its host. Paths carry
the region as a prefix (`/{region}/generateAssistantResponse`, `POST /{region}/`), which is how one fake
plays every regional host; ki2api reaches it through `KIRO_Q_URL=http://127.0.0.1:PORT/{region}`.

Serves path-style chat and the AWS JSON 1.0 control plane (`x-amz-target: AmazonCodeWhispererService.<Op>`
on `POST /`): ListAvailableModels, GetUsageLimits, ListAvailableProfiles, GetProfile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import catalog, web_search
from .accounts import Account
from .host_rules import (
    BUILDER_ID_UNSUPPORTED,
    NOT_AUTHORIZED,
    account_signals,
    q_bearer,
    q_profile_arn,
    top_level_fields,
)
from .validation import BAD_BEARER, IMPROPER, Rejected, parse_body, validate_chat


def _json_or_none(raw: bytes) -> Any:
    try:
        return parse_body(raw)
    except Rejected:
        return None


if TYPE_CHECKING:
    from .server import FakeKiro

AMZ_JSON = "application/x-amz-json-1.0"
SERVICE = "AmazonCodeWhispererService."
UNKNOWN_OPERATION: dict[str, Any] = {"__type": "UnknownOperationException", "message": "Unknown operation"}
REGIONS = frozenset({"us-east-1", "eu-central-1", "us-gov-east-1", "us-gov-west-1"})


def _region(request: Request) -> str:
    return str(request.path_params.get("region", "us-east-1"))


def _bearer_account(headers: Mapping[str, str], fake: FakeKiro) -> Account | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return fake.accounts.by_access_token(token.strip()) if scheme == "Bearer" and token.strip() else None


class AwsSurface:
    """Routes of the AWS-surface host; state (accounts, recording, scripts) is the FakeKiro's."""

    def __init__(self, fake: FakeKiro) -> None:
        self.fake = fake
        routes = [
            Route("/{region}/generateAssistantResponse", self._chat, methods=["POST"]),
            Route("/{region}/mcp", self._mcp, methods=["POST"]),
            Route("/{region}/", self._operation, methods=["POST"]),
            Route("/{region}", self._operation, methods=["POST"]),
            Route("/{rest:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE"]),
        ]
        self.app = Starlette(routes=routes)

    # ---- chat (2026 §1.1 q column) --------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        raw, failure = await self.fake._arrive(request, host="q")
        if failure:
            return failure
        region = _region(request)
        if region not in REGIONS:
            # 2026 §1.2: non-profile regions have no runtime host (connection error / 502 in the wild).
            return JSONResponse({"message": f"no such host q.{region}"}, 502)
        headers = {k.lower(): v for k, v in request.headers.items()}

        def access(account: Account, sent: Mapping[str, str]) -> None:
            q_bearer(account, sent)
            account_signals(account)

        def arn_check(body: dict[str, Any], account: Account) -> None:
            q_profile_arn(body.get("profileArn"), account, region, self.fake.rules)

        try:
            valid = validate_chat(
                headers,
                raw,
                self.fake.accounts,
                self.fake.limits,
                access=access,
                arn_check=arn_check,
                body_check=top_level_fields,
            )
        except Rejected as rejected:
            return self.fake._reject(request, rejected)
        return await self.fake._answer_chat(valid)

    # ---- JSON 1.0 control plane (2026 §1.4, §2) --------------------------------------------------------

    async def _operation(self, request: Request) -> Response:
        raw, failure = await self.fake._arrive(request, host="q")
        if failure:
            return failure
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            if headers.get("content-type") != AMZ_JSON:
                raise Rejected(IMPROPER, f"Content-Type must be exactly {AMZ_JSON}")
            target = headers.get("x-amz-target", "")
            if not target.startswith(SERVICE):
                raise Rejected(UNKNOWN_OPERATION, f"x-amz-target {target!r} is not {SERVICE}<Op>")
            operation = target[len(SERVICE) :]
            body = parse_body(raw) if raw else {}
            answer = self._dispatch(operation, headers, body, _region(request), request.query_params)
        except Rejected as rejected:
            return self.fake._reject(request, rejected)
        return JSONResponse(answer)

    def _dispatch(
        self, operation: str, headers: Mapping[str, str], body: dict[str, Any], region: str, query: Mapping[str, str]
    ) -> dict[str, Any]:
        account = _bearer_account(headers, self.fake)
        if operation == "ListAvailableProfiles":
            return self._profiles(account, headers, body, region)
        if account is None:
            raise Rejected(BAD_BEARER, "unknown or expired access token", status=403)
        q_bearer(account, headers)
        account_signals(account)
        arn = body.get("profileArn") or query.get("profileArn")
        if operation == "ListAvailableModels":
            q_profile_arn(arn, account, region, self.fake.rules)
            page = catalog.models_page(body.get("nextToken"), self.fake.limits.models_page_size, account.models)
            if page is None:
                raise Rejected(IMPROPER, "unknown nextToken")
            return page
        if operation == "GetUsageLimits":
            q_profile_arn(arn, account, region, self.fake.rules)
            return catalog.usage_limits(account, query.get("isEmailRequired") == "true")
        if operation == "GetProfile":
            if account.kind == "api_key":
                raise Rejected(NOT_AUTHORIZED, "GetProfile for an API key (2026 §3)", status=403)
            q_profile_arn(arn, account, region, self.fake.rules)
            return {"profile": {"arn": arn, "profileName": "QDefaultProfile", "status": "ACTIVE"}}
        raise Rejected(UNKNOWN_OPERATION, f"operation {operation!r} not served here")

    def _profiles(
        self, account: Account | None, headers: Mapping[str, str], body: dict[str, Any], region: str
    ) -> dict[str, Any]:
        """2026 §2.1: an unknown token gets 200 and an empty list; the list holds the profiles of this region."""
        if account is None:
            return {"profiles": [], "nextToken": None}
        q_bearer(account, headers)
        account_signals(account)
        if account.builder_id:
            raise Rejected(BUILDER_ID_UNSUPPORTED, "Builder ID cannot list profiles (PIF #485)", status=403)
        if account.kind == "api_key":
            raise Rejected(NOT_AUTHORIZED, "API keys have no profiles (2026 §3)", status=403)
        max_results = body.get("maxResults", 10)
        if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 1:
            raise Rejected(IMPROPER, "maxResults must be a positive integer")
        profiles = [p for p in catalog.profiles(account)["profiles"] if p["arn"].split(":")[3] == region]
        return {"profiles": profiles, "nextToken": None}

    async def _mcp(self, request: Request) -> Response:
        """kiro-protocol-2026.md §6: web search over MCP JSON-RPC (rules in web_search.py)."""
        raw, failure = await self.fake._arrive(request, host="q")
        if failure:
            return failure
        headers = {k.lower(): v for k, v in request.headers.items()}
        account = _bearer_account(headers, self.fake)
        if account is None:
            return self.fake._reject(request, Rejected(BAD_BEARER, "unknown or expired access token", status=403))
        try:
            status, body = web_search.answer(_json_or_none(raw), headers, account, _region(request))
        except Rejected as rejected:
            return self.fake._reject(request, rejected)
        return JSONResponse(body, status)

    async def _unknown(self, request: Request) -> Response:
        _, failure = await self.fake._arrive(request, host="q")
        return failure or JSONResponse(UNKNOWN_OPERATION, 404)

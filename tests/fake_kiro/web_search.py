"""The fake's `POST /mcp` `web_search` tool, written from kiro-protocol-2026.md §6.1-6.2.

JSON-RPC 2.0 `tools/call` with `params.name: "web_search"` and `params.arguments.query`; an `id` shaped
`web_search_tooluse_<22 alnum>_<epoch ms>_<8 alnum>`; the login's profile ARN at the body's root (or, as
KRS sends it, in `x-amzn-kiro-profile-arn`; never as a query parameter). The answer's `result.content[0].text`
is itself JSON. It lives on the AWS surface (`q.{region}`, aws_surface.py),
where ki2api calls it. Queries steer the outcome: one containing `nothing` has no hits (`-32602 Tool returned no
results`), an empty one is invalid (`-32602 Invalid tool parameters provided`). Logins in a region listed in
`NO_WEB_TOOLS_REGIONS` are refused: §6.2 reports such regions (eu-central-1) but not the wire answer, so the
fake answers a 403 with an AccessDenied message, one of the refusals ki2api must turn into a clear error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .accounts import Account
from .validation import Rejected

NO_PROFILE_MCP: dict[str, Any] = {"message": "profileArn is required for this request.", "reason": None}
NO_WEB_TOOLS: dict[str, Any] = {
    "__type": "AccessDeniedException",
    "message": "Web tools are not available for this account or region.",
}
NO_WEB_TOOLS_REGIONS = frozenset({"eu-central-1"})
PUBLISHED_MS = 1_759_276_800_000  # 2025-10-01, so page_age reads "October 1, 2025"
_ID = re.compile(r"^web_search_tooluse_[A-Za-z0-9]{22}_\d{13}_[A-Za-z0-9]{8}$")


def results_for(query: str) -> list[dict[str, Any]]:
    """Two deterministic hits naming the query, with every field §6.2 lists."""
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:40] or "q"
    return [
        {
            "title": f"Result {n} for {query}",
            "url": f"https://example.org/{slug}/{n}",
            "snippet": f"Snippet {n} about {query}. " + "More words follow here. " * 12,
            "publishedDate": PUBLISHED_MS if n == 1 else None,
            "id": f"r{n}",
            "domain": "example.org",
            "maxVerbatimWordLimit": 25,
            "publicDomain": False,
        }
        for n in (1, 2)
    ]


def answer(body: Any, headers: Mapping[str, str], account: Account, region: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one /mcp call on the `region` host by an already authenticated account."""
    if not isinstance(body, dict):
        raise Rejected({"message": "Invalid JSON-RPC request", "reason": None}, "body is not a JSON object")
    arn = body.get("profileArn") or headers.get("x-amzn-kiro-profile-arn")
    if not arn:
        raise Rejected(NO_PROFILE_MCP, "profileArn missing (root-level body field or x-amzn-kiro-profile-arn)")
    if arn != account.profile_arn:
        raise Rejected(
            {"message": "User is not authorized to make this call.", "reason": None},
            "profileArn belongs to another account",
            status=403,
        )
    if region in NO_WEB_TOOLS_REGIONS:
        raise Rejected(NO_WEB_TOOLS, f"no web tools in {region}", status=403)
    request_id = body.get("id")
    params = body.get("params")
    if body.get("jsonrpc") != "2.0" or body.get("method") != "tools/call" or not isinstance(params, dict):
        raise Rejected({"message": "Invalid JSON-RPC request", "reason": None}, "not a JSON-RPC tools/call")
    if not isinstance(request_id, str) or not _ID.match(request_id):
        raise Rejected(
            {"message": "Invalid JSON-RPC request", "reason": None}, f"id {request_id!r} is not web_search_tooluse_…"
        )
    if params.get("name") != "web_search":
        return 200, _error(request_id, -32602, f"Unknown tool: {params.get('name')}")
    arguments = params.get("arguments")
    query = arguments.get("query") if isinstance(arguments, dict) else None
    if not isinstance(query, str) or not query.strip():
        return 200, _error(request_id, -32602, "Invalid tool parameters provided")
    if "nothing" in query.lower():
        return 200, _error(request_id, -32602, "Tool returned no results")
    results = results_for(query)
    text = json.dumps({"query": query, "totalResults": len(results), "results": results})
    return 200, {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"isError": False, "content": [{"type": "text", "text": text}]},
    }


def _error(request_id: str, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}

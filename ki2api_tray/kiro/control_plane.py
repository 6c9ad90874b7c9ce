"""Kiro's control plane in both wire forms (kiro-protocol-2026.md §1.4): REST GET/POST on the management host
for social logins, AWS JSON 1.0 (`POST /` + `x-amz-target: AmazonCodeWhispererService.<Op>`) on the AWS
surface for everyone else. ListAvailableModels, GetUsageLimits and ListAvailableProfiles go through here.
"""

from __future__ import annotations

import json
import platform
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from .token_refresh import KIRO_IDE_VERSION, machine_id

AMZ_JSON = "application/x-amz-json-1.0"  # exactly this: no "; charset" (§1.4)
SERVICE = "AmazonCodeWhispererService"
NODE_VERSION = "22.21.1"
TIMEOUT = httpx.Timeout(15.0)


def os_tag() -> str:
    system = {"Windows": "win32", "Darwin": "darwin"}.get(platform.system(), "linux")
    return f"{system}#{platform.release()}"


def control_headers(access_token: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The IDE's control-plane identity (§1.4 REST row): `api/codewhispererruntime`, one attempt."""
    agent = f"KiroIDE-{KIRO_IDE_VERSION}-{machine_id()}"
    return {
        "Authorization": f"Bearer {access_token}",
        "Accept": "application/json",
        "User-Agent": (
            f"aws-sdk-js/1.0.0 ua/2.1 os/{os_tag()} lang/js md/nodejs#{NODE_VERSION} "
            f"api/codewhispererruntime#1.0.0 m/N,E {agent}"
        ),
        "x-amz-user-agent": f"aws-sdk-js/1.0.0 {agent}",
        "amz-sdk-invocation-id": str(uuid.uuid4()),
        "amz-sdk-request": "attempt=1; max=1",
        **extra,
    }


async def json_operation(
    http: httpx.AsyncClient,
    base: str,
    operation: str,
    body: Mapping[str, Any],
    access_token: str,
    extra: Mapping[str, str],
    query: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One AWS JSON 1.0 call to `POST {base}/`; transport errors propagate as httpx errors."""
    headers = {
        **control_headers(access_token, extra),
        "Content-Type": AMZ_JSON,
        "x-amz-target": f"{SERVICE}.{operation}",
    }
    content = json.dumps(dict(body), separators=(",", ":")).encode()
    return await http.post(f"{base}/", content=content, headers=headers, params=dict(query or {}), timeout=TIMEOUT)


async def rest_get(
    http: httpx.AsyncClient,
    base: str,
    operation: str,
    params: Mapping[str, str],
    access_token: str,
    extra: Mapping[str, str],
) -> httpx.Response:
    """The management host's REST form: `GET {base}/{Operation}?…` with JSON headers (old doc §4.3, §7)."""
    headers = {**control_headers(access_token, extra), "Content-Type": "application/json"}
    return await http.get(f"{base}/{operation}", params=dict(params), headers=headers, timeout=TIMEOUT)

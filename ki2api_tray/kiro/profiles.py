"""Finding the profile ARN of a login that names none: ListAvailableProfiles (kiro-protocol-2026.md §2).

Probes the profile regions on the AWS surface with the JSON 1.0 form (EU first for EU-ish SSO regions),
tolerates a region's 403 or empty list, follows `nextToken`, prefers a profile whose ARN lives in the
probed region; then tries the management host's REST form. Returns the ARN or None; raises KiroUnavailable
only when no host could be asked at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from ..config import Settings
from ..core.errors import KiroUnavailable
from .control_plane import TIMEOUT, control_headers, json_operation
from .login_kind import arn_region, mask_arn

log = logging.getLogger(__name__)

MAX_PAGES = 10
_EU_FIRST = ("eu-", "af-", "me-", "il-")


def probe_regions(settings: Settings, sso_region: str | None) -> list[str]:
    """us-east-1 and eu-central-1 (EU first for `eu-`/`af-`/`me-`/`il-` SSO regions), then other profile
    regions; the SSO region only when it is itself a profile region (§2.1, §1.2)."""
    regions = list(settings.allowed_regions)
    first = "eu-central-1" if sso_region and sso_region.startswith(_EU_FIRST) else sso_region
    if first in regions:
        regions.remove(first)
        regions.insert(0, first)
    return regions


def _arns(page: Any) -> list[str]:
    profiles = page.get("profiles") if isinstance(page, dict) else None
    found = []
    for profile in profiles if isinstance(profiles, list) else []:
        arn = profile.get("arn") if isinstance(profile, dict) else None
        if isinstance(arn, str) and arn.startswith("arn:"):
            found.append(arn)
    return found


async def _list_region(http: httpx.AsyncClient, base: str, access_token: str, extra: Mapping[str, str]) -> list[str]:
    arns: list[str] = []
    body: dict[str, Any] = {"maxResults": 10}
    for _ in range(MAX_PAGES):
        response = await json_operation(http, base, "ListAvailableProfiles", body, access_token, extra)
        if response.status_code >= 500:
            raise KiroUnavailable(f"Kiro could not list your profiles (HTTP {response.status_code})")
        if not response.is_success:
            return arns  # a region-mismatched token gets 403 here: keep probing (PPK PR #132)
        try:
            page = response.json()
        except ValueError:
            return arns
        arns += [a for a in _arns(page) if a not in arns]
        token = page.get("nextToken") if isinstance(page, dict) else None
        if not token:
            break
        body = {"maxResults": 10, "nextToken": token}
    return arns


async def discover_profile_arn(
    http: httpx.AsyncClient,
    settings: Settings,
    access_token: str,
    extra: Mapping[str, str],
    sso_region: str | None,
) -> str | None:
    """The login's profile ARN as Kiro lists it, or None when no host lists one."""
    unreachable: Exception | None = None
    for region in probe_regions(settings, sso_region):
        base = settings.q_base(region)
        try:
            arns = await _list_region(http, base, access_token, extra)
        except (httpx.HTTPError, httpx.InvalidURL, KiroUnavailable) as exc:
            unreachable = exc
            continue
        if arns:
            arn = next((a for a in arns if arn_region(a) == region), arns[0])
            log.info("Kiro listed %d profile(s) in %s; using %s", len(arns), region, mask_arn(arn))
            return arn
    # The other wire form: REST on the management host (old doc §4.3).
    url = f"{settings.management_base(settings.region_for(None))}/ListAvailableProfiles"
    headers = {**control_headers(access_token, extra), "Content-Type": "application/json"}
    try:
        response = await http.post(url, json={}, headers=headers, timeout=TIMEOUT)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        unreachable = exc
    else:
        if response.status_code >= 500:
            unreachable = KiroUnavailable(f"HTTP {response.status_code}")
        elif response.is_success:
            try:
                arns = _arns(response.json())
            except ValueError:
                arns = []
            if arns:
                log.info("Kiro's management host listed %d profile(s); using %s", len(arns), mask_arn(arns[0]))
                return arns[0]
            return None
    if unreachable is not None:
        raise KiroUnavailable(
            f"Could not reach Kiro to look up your profile ({type(unreachable).__name__}); "
            "will retry on the next request"
        ) from unreachable
    return None

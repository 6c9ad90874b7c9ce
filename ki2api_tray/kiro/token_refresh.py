"""The HTTP calls of the token lifecycle: refreshing a login (social, IdC, external IdP) and finding a profile ARN.

Stateless; every failure leaves as `KiroLoginRequired` (the login is dead: the person must sign in again)
or `KiroUnavailable` (the service could not be reached; trying again later may work). Messages never hold
a token or a response body.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import Settings, is_loopback
from ..core.errors import KiroLoginRequired, KiroUnavailable
from .token_file import ClientRegistration, TokenRecord

# Kiro's auth client gives up after 10 s (kiro-protocol.md §2.1); a little more slack for slow proxies.
REFRESH_TIMEOUT = httpx.Timeout(15.0)
# Kiro stops serving IDE versions older than 0.11.133 (kirodotdev/Kiro #11335).
KIRO_IDE_VERSION = "0.11.133"
OIDC_SDK_VERSION = "3.980.0"
DEFAULT_EXPIRES_IN = 3600.0
_OAUTH_ERROR_CODE = re.compile(r"[A-Za-z_]{1,64}")


@dataclass(frozen=True)
class RefreshedToken:
    """What a refresh endpoint answered; None means "not sent, keep the old one"."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: float
    profile_arn: str | None = None


def machine_id() -> str:
    # Kiro sends SHA-256 of the OS machine id; any stable 64-hex value is accepted (kiro-protocol.md §3.2).
    try:
        user = getpass.getuser()
    except Exception:  # getuser raises several types on odd systems; the id only has to be stable
        user = "user"
    return hashlib.sha256(f"{socket.gethostname()}-{user}-ki2api".encode()).hexdigest()


def kiro_user_agent() -> str:
    return f"KiroIDE-{KIRO_IDE_VERSION}-{machine_id()}"


async def refresh_login(
    http: httpx.AsyncClient, settings: Settings, record: TokenRecord, registration: ClientRegistration | None
) -> RefreshedToken:
    """Trade the record's refresh token for a new access token at the service that issued it."""
    if not record.refresh_token and record.auth_kind == "environment":
        raise KiroLoginRequired(
            "KIRO_ACCESS_TOKEN is no longer accepted and KIRO_REFRESH_TOKEN is not set: set fresh tokens, "
            "or unset both and log in to Kiro"
        )
    if record.auth_kind == "api_key":
        raise KiroLoginRequired("A Kiro API key cannot be renewed: create a new key in the Kiro portal")
    if not record.refresh_token and record.origin == "kiro_cli":
        raise KiroLoginRequired(
            "The kiro-cli login has no refresh token, so it cannot be renewed: run kiro-cli login again"
        )
    if not record.refresh_token:
        raise KiroLoginRequired("The Kiro login has no refresh token, so it cannot be renewed: log in to Kiro again")
    if record.auth_kind == "idc":
        return await _refresh_idc(http, settings, record, registration)
    if record.auth_kind == "external_idp":
        return await _refresh_external_idp(http, record)
    # Social logins, and the seed's environment tokens, go to Kiro's own auth service (kiro-protocol.md §2.1).
    url = f"{settings.auth_url.rstrip('/')}/refreshToken"
    headers = {"Content-Type": "application/json", "User-Agent": kiro_user_agent()}
    data = await _post(http, url, headers=headers, json_body={"refreshToken": record.refresh_token})
    return _refreshed_from(data)


async def _refresh_idc(
    http: httpx.AsyncClient, settings: Settings, record: TokenRecord, registration: ClientRegistration | None
) -> RefreshedToken:
    if registration is None:
        raise KiroLoginRequired("Kiro's client registration for this login is missing: log in to Kiro again")
    # SSO-OIDC CreateToken takes JSON with camelCase keys, not a form (kiro-protocol.md §2.2).
    url = f"{settings.oidc_base(record.sso_region or 'us-east-1')}/token"
    body = {
        "clientId": registration.client_id,
        "clientSecret": registration.client_secret,
        "refreshToken": record.refresh_token,
        "grantType": "refresh_token",
    }
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"aws-sdk-js/{OIDC_SDK_VERSION} KiroIDE",
        "x-amz-user-agent": f"aws-sdk-js/{OIDC_SDK_VERSION} KiroIDE",
    }
    return _refreshed_from(await _post(http, url, headers=headers, json_body=body))


async def _refresh_external_idp(http: httpx.AsyncClient, record: TokenRecord) -> RefreshedToken:
    endpoint = _checked_token_endpoint(record)
    form = {"grant_type": "refresh_token", "refresh_token": record.refresh_token}
    if record.client_id:
        form["client_id"] = record.client_id
    if record.scopes:
        form["scope"] = " ".join(record.scopes)
    headers = {"User-Agent": kiro_user_agent()}
    return _refreshed_from(await _post(http, str(endpoint), headers=headers, form=form))


def _checked_token_endpoint(record: TokenRecord) -> httpx.URL:
    """The external IdP's token URL, refused unless it is https on the issuer's host (kiro-protocol.md §2.3)."""
    problem = "The Kiro login names no token endpoint for its identity provider"
    if record.token_endpoint:
        try:
            endpoint = httpx.URL(record.token_endpoint)
            issuer = httpx.URL(record.issuer_url) if record.issuer_url else None
        except httpx.InvalidURL:
            endpoint, issuer = None, None
        if endpoint is None or not endpoint.host:
            problem = "The Kiro login's token endpoint is not a valid URL"
        elif endpoint.scheme != "https" and not (endpoint.scheme == "http" and is_loopback(endpoint.host)):
            problem = f"The Kiro login's token endpoint on {endpoint.host} does not use https"
        elif issuer is not None and issuer.host != endpoint.host:
            problem = f"The Kiro login's token endpoint ({endpoint.host}) is not on its issuer's host ({issuer.host})"
        else:
            return endpoint
    raise KiroLoginRequired(f"{problem}, so ki2api will not send the refresh token there: log in to Kiro again")


async def _post(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    json_body: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST to a login service and return its JSON object, mapping every failure to a core error."""
    try:
        response = await http.post(url, json=json_body, data=form, headers=headers, timeout=REFRESH_TIMEOUT)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise KiroUnavailable(
            f"Could not reach Kiro's login service to refresh the token ({_describe_failure(url, exc)}); "
            "will retry on the next request"
        ) from exc
    status = response.status_code
    if status in (400, 401, 403):
        # invalid_grant / invalid_client / 401: the refresh token or registration is dead (kiro-protocol.md §2.2).
        reason = _oauth_error(response) or f"HTTP {status}"
        raise KiroLoginRequired(f"Kiro token expired and could not be refreshed ({reason}): log in to Kiro again")
    if not response.is_success:
        raise KiroUnavailable(
            f"Could not reach Kiro's login service to refresh the token (HTTP {status} from {_host(url)}); "
            "will retry on the next request"
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise KiroUnavailable(
            f"Kiro's login service ({_host(url)}) sent an answer that is not JSON; will retry on the next request"
        )
    return data


def _refreshed_from(data: dict[str, Any]) -> RefreshedToken:
    # Kiro and SSO-OIDC answer in camelCase; OAuth identity providers in snake_case (kiro-protocol.md §2).
    def pick(*keys: str) -> Any:
        return next((data[k] for k in keys if data.get(k) not in (None, "")), None)

    access = pick("accessToken", "access_token")
    if not isinstance(access, str):
        raise KiroUnavailable("Kiro's login service answered without an access token; will retry on the next request")
    refresh = pick("refreshToken", "refresh_token")
    expires_in = pick("expiresIn", "expires_in")
    try:
        seconds = float(expires_in) if expires_in is not None else DEFAULT_EXPIRES_IN
    except (TypeError, ValueError):
        seconds = DEFAULT_EXPIRES_IN
    arn = pick("profileArn", "profile_arn")
    return RefreshedToken(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) else None,
        expires_in=seconds if seconds > 0 else DEFAULT_EXPIRES_IN,
        profile_arn=arn if isinstance(arn, str) else None,
    )


def _oauth_error(response: httpx.Response) -> str | None:
    """The OAuth `error` code (e.g. invalid_grant) when it is a plain word; never free text from the body."""
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("error") if isinstance(data, dict) else None
    return code if isinstance(code, str) and _OAUTH_ERROR_CODE.fullmatch(code) else None


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "the configured URL"
    except httpx.InvalidURL:
        return "an invalid URL"


def _describe_failure(url: str, exc: Exception) -> str:
    return f"{type(exc).__name__} talking to {_host(url)}"

"""The refresh and profile-lookup calls: request shapes per login kind, answers, and error mapping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from ki2api_tray.config import Settings
from ki2api_tray.core.errors import KiroLoginRequired, KiroUnavailable
from ki2api_tray.kiro.profiles import discover_profile_arn
from ki2api_tray.kiro.token_file import ClientRegistration, TokenRecord
from ki2api_tray.kiro.token_refresh import RefreshedToken, refresh_login

Handler = Callable[[httpx.Request], httpx.Response]
SETTINGS = Settings(
    token_file=Path("unused"),
    auth_url="https://auth.test",
    oidc_url="https://oidc.test",
    management_url="https://management.test",
)
SOCIAL = TokenRecord("aoa-old", "aor-old", None, "social", profile_arn="arn:aws:codewhisperer:us-east-1:1:profile/P")
IDC = TokenRecord("aoa-old", "aor-old", None, "idc", sso_region="eu-west-1", client_id_hash="h")
REGISTRATION = ClientRegistration("client-id", "client-secret", None)


def external(endpoint: str, issuer: str | None = "https://login.example.com/tenant") -> TokenRecord:
    return TokenRecord(
        "aoa-old",
        "aor-old",
        None,
        "external_idp",
        token_endpoint=endpoint,
        issuer_url=issuer,
        client_id="app-1",
        scopes=("openid", "offline_access"),
    )


def run_refresh(
    record: TokenRecord, handler: Handler, registration: ClientRegistration | None = None, settings: Settings = SETTINGS
) -> tuple[RefreshedToken, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def go() -> RefreshedToken:
        async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http:
            return await refresh_login(http, settings, record, registration)

    return asyncio.run(go()), seen


def answer(status: int = 200, **body: Any) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def test_refresh_social_request_shape() -> None:
    result, seen = run_refresh(SOCIAL, answer(accessToken="aoa-new", refreshToken="aor-new", expiresIn=1800))
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "https://auth.test/refreshToken")
    assert json.loads(request.content) == {"refreshToken": "aor-old"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("KiroIDE-")
    assert (result.access_token, result.refresh_token, result.expires_in) == ("aoa-new", "aor-new", 1800)


def test_refresh_environment_login_uses_social_endpoint() -> None:
    seed = TokenRecord("", "aor-seed", None, "environment")
    _, seen = run_refresh(seed, answer(accessToken="aoa-new"))
    assert str(seen[0].url) == "https://auth.test/refreshToken"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"accessToken": "n"}, RefreshedToken("n", None, 3600.0, None)),
        ({"accessToken": "n", "expiresIn": "120", "profileArn": "arn:x"}, RefreshedToken("n", None, 120.0, "arn:x")),
        ({"access_token": "n", "refresh_token": "r", "expires_in": 60}, RefreshedToken("n", "r", 60.0, None)),
        ({"accessToken": "n", "refreshToken": "", "expiresIn": -5}, RefreshedToken("n", None, 3600.0, None)),
    ],
)
def test_refresh_reads_answer(body: dict[str, Any], expected: RefreshedToken) -> None:
    result, _ = run_refresh(SOCIAL, answer(**body))
    assert result == expected


def test_refresh_idc_posts_camel_case_json_to_sso_region() -> None:
    result, seen = run_refresh(IDC, answer(accessToken="aoa-new", expiresIn=3600), registration=REGISTRATION)
    (request,) = seen
    assert str(request.url) == "https://oidc.test/token"
    assert json.loads(request.content) == {
        "clientId": "client-id",
        "clientSecret": "client-secret",
        "refreshToken": "aor-old",
        "grantType": "refresh_token",
    }
    assert result.refresh_token is None
    default_oidc = Settings(token_file=Path("unused"))
    _, seen = run_refresh(IDC, answer(accessToken="n"), registration=REGISTRATION, settings=default_oidc)
    assert str(seen[0].url) == "https://oidc.eu-west-1.amazonaws.com/token"


def test_refresh_idc_without_registration_needs_login() -> None:
    with pytest.raises(KiroLoginRequired, match="registration"):
        run_refresh(IDC, answer(accessToken="n"))


def test_refresh_external_idp_posts_form() -> None:
    record = external("https://login.example.com/tenant/oauth2/v2.0/token")
    result, seen = run_refresh(record, answer(access_token="aoa-new", refresh_token="aor-new", expires_in=600))
    (request,) = seen
    assert str(request.url) == "https://login.example.com/tenant/oauth2/v2.0/token"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "aor-old",
        "client_id": "app-1",
        "scope": "openid offline_access",
    }
    assert (result.access_token, result.refresh_token, result.expires_in) == ("aoa-new", "aor-new", 600)


@pytest.mark.parametrize(
    ("endpoint", "issuer", "message"),
    [
        ("http://login.example.com/token", "https://login.example.com/", "does not use https"),
        ("https://evil.example.net/token", "https://login.example.com/", "not on its issuer's host"),
        ("", None, "names no token endpoint"),
    ],
)
def test_refresh_external_idp_refuses_unsafe_endpoint(endpoint: str, issuer: str | None, message: str) -> None:
    with pytest.raises(KiroLoginRequired, match=message):
        run_refresh(external(endpoint, issuer), answer(access_token="n"))


def test_refresh_external_idp_allows_loopback_http() -> None:
    _, seen = run_refresh(external("http://127.0.0.1:9000/token", "http://127.0.0.1:9000/"), answer(access_token="n"))
    assert seen[0].url.host == "127.0.0.1"


def test_refresh_without_refresh_token_needs_login() -> None:
    with pytest.raises(KiroLoginRequired, match="log in to Kiro again"):
        run_refresh(TokenRecord("aoa", "", None, "social"), answer(accessToken="n"))


def _connect_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize(
    ("handler", "error", "message"),
    [
        (answer(400, error="invalid_grant", error_description="Invalid refresh token provided"), KiroLoginRequired,
         r"\(invalid_grant\): log in to Kiro again"),
        (answer(400, error="invalid_client"), KiroLoginRequired, "invalid_client"),
        (answer(401, message="nope"), KiroLoginRequired, r"\(HTTP 401\)"),
        (answer(403), KiroLoginRequired, "log in to Kiro again"),
        (answer(500), KiroUnavailable, r"HTTP 500 from auth.test\); will retry on the next request"),
        (answer(429), KiroUnavailable, "HTTP 429"),
        (lambda r: httpx.Response(200, text="<html>"), KiroUnavailable, "not JSON"),
        (answer(200, tokenType="Bearer"), KiroUnavailable, "without an access token"),
        (_connect_error, KiroUnavailable, r"Could not reach Kiro's login service .*ConnectError talking to auth.test"),
        (_timeout, KiroUnavailable, "ReadTimeout"),
    ],
)  # fmt: skip
def test_refresh_maps_failures(handler: Handler, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        run_refresh(SOCIAL, handler)


def test_refresh_error_never_echoes_body() -> None:
    with pytest.raises(KiroLoginRequired) as caught:
        run_refresh(SOCIAL, answer(400, error="token aor-old is dead"))
    assert "aor-old" not in str(caught.value)


def run_profiles(handler: Handler, sso_region: str | None = None) -> tuple[str | None, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def go() -> str | None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http:
            headers = {"TokenType": "EXTERNAL_IDP"}
            return await discover_profile_arn(http, Q_SETTINGS, "aoa-bearer", headers, sso_region)

    return asyncio.run(go()), seen


Q_SETTINGS = replace(SETTINGS, q_url="https://q.test/{region}")
EU = "arn:aws:codewhisperer:eu-central-1:111122223333:profile/EU"


def by_region(answers: dict[str, Any]) -> Handler:
    """ListAvailableProfiles per region on the AWS surface; the management host lists nothing."""

    def handle(request: httpx.Request) -> httpx.Response:
        region = request.url.path.strip("/").split("/")[0]
        found = answers.get(region, answers.get(request.url.host, {"profiles": []}))
        return found if isinstance(found, httpx.Response) else httpx.Response(200, json=found)

    return handle


def test_profile_discovery_request_shape_and_region_order() -> None:
    arn, seen = run_profiles(by_region({"eu-central-1": {"profiles": [{"arn": EU}], "nextToken": None}}))
    first, second = seen
    assert (first.method, str(first.url)) == ("POST", "https://q.test/us-east-1/")
    assert first.headers["content-type"] == "application/x-amz-json-1.0"
    assert first.headers["x-amz-target"] == "AmazonCodeWhispererService.ListAvailableProfiles"
    assert json.loads(first.content) == {"maxResults": 10}
    assert (first.headers["authorization"], first.headers["tokentype"]) == ("Bearer aoa-bearer", "EXTERNAL_IDP")
    assert str(second.url) == "https://q.test/eu-central-1/"
    assert arn == EU


def test_profile_discovery_probes_eu_first_for_eu_sso_and_survives_403() -> None:
    handler = by_region(
        {"us-east-1": httpx.Response(403, json={"message": "no"}), "eu-central-1": {"profiles": [{"arn": EU}]}}
    )
    arn, seen = run_profiles(handler, sso_region="eu-west-1")
    assert [r.url.path for r in seen] == ["/eu-central-1/"]
    assert arn == EU
    arn, seen = run_profiles(
        by_region({"us-east-1": httpx.Response(403, json={}), "eu-central-1": {"profiles": [{"arn": EU}]}})
    )
    assert (arn, len(seen)) == (EU, 2)


def test_profile_discovery_follows_next_token_and_prefers_the_probed_region() -> None:
    us = "arn:aws:codewhisperer:us-east-1:111122223333:profile/US"

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "nextToken" in body:
            return httpx.Response(200, json={"profiles": [{"arn": us}]})
        return httpx.Response(200, json={"profiles": [{"arn": EU}], "nextToken": "t1"})

    arn, seen = run_profiles(handle)
    assert arn == us
    assert json.loads(seen[1].content) == {"maxResults": 10, "nextToken": "t1"}


def test_profile_discovery_falls_back_to_the_management_form() -> None:
    handler = by_region({"management.test": {"profiles": [{"arn": EU}]}})
    arn, seen = run_profiles(handler)
    assert (seen[-1].method, str(seen[-1].url)) == ("POST", "https://management.test/ListAvailableProfiles")
    assert arn == EU


@pytest.mark.parametrize(
    "handler", [answer(profiles=[]), answer(403, message="denied"), lambda r: httpx.Response(200, text="x")]
)
def test_profile_discovery_none_when_nothing_listed(handler: Handler) -> None:
    assert run_profiles(handler)[0] is None


@pytest.mark.parametrize("handler", [answer(503), _connect_error])
def test_profile_discovery_unreachable(handler: Handler) -> None:
    with pytest.raises(KiroUnavailable, match="will retry"):
        run_profiles(handler)


def test_refreshed_token_repr_hides_tokens() -> None:
    text = repr(RefreshedToken("aoa-secret", "aor-secret", 1.0, None)) + repr(REGISTRATION) + repr(SOCIAL)
    for secret in ("aoa-secret", "aor-secret", "client-secret", "aoa-old", "aor-old"):
        assert secret not in text

"""TokenStore: health over time, single-flight refresh, write-back like Kiro, failures, and no leaked tokens."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from ki2api_tray.config import Settings
from ki2api_tray.core.errors import KiroLoginRequired, KiroUnavailable
from ki2api_tray.kiro import tokens
from ki2api_tray.kiro.tokens import Credentials, TokenStore
from ki2api_tray.state import TokenHealth, TokenStatus

UTC = timezone.utc
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/SOCIAL"
EU_ARN = "arn:aws:codewhisperer:eu-central-1:123456789012:profile/EU"
T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeLogin:
    """Kiro's auth service, SSO-OIDC and the management host, behind httpx.MockTransport."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.failures: list[httpx.Response | Exception] = []  # served first, one per refresh call
        self.issued = 0
        self.delay = 0.0
        self.during_refresh: Callable[[], None] | None = None
        self.profiles: list[dict[str, str]] = [{"arn": EU_ARN}]

    def refreshes(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path in ("/refreshToken", "/token")]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle))

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await asyncio.sleep(self.delay)  # lets concurrent callers pile up behind the refresh
        target = request.headers.get("x-amz-target", "")
        if request.url.path == "/ListAvailableProfiles" or target.endswith(".ListAvailableProfiles"):
            return httpx.Response(200, json={"profiles": self.profiles})
        if self.during_refresh is not None:
            self.during_refresh()
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        self.issued += 1
        n = self.issued
        return httpx.Response(
            200, json={"accessToken": f"aoa-new-{n}", "refreshToken": f"aor-new-{n}", "expiresIn": 3600}
        )


@pytest.fixture
def token_path(isolated_home: Path) -> Path:
    path = isolated_home / ".aws" / "sso" / "cache" / "kiro-auth-token.json"
    path.parent.mkdir(parents=True)
    return path


@pytest.fixture
def settings(token_path: Path, isolated_home: Path) -> Settings:
    return Settings(
        token_file=token_path,
        profile_file=isolated_home / "profile.json",
        auth_url="https://auth.test",
        oidc_url="https://oidc.test",
        management_url="https://management.test",
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakeLogin:
    return FakeLogin()


def write_token(path: Path, expires_in_min: float, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "accessToken": "aoa-old",
        "refreshToken": "aor-old",
        "expiresAt": (NOW + timedelta(minutes=expires_in_min)).isoformat(),
        "authMethod": "social",
        "provider": "Google",
        "profileArn": ARN,
        **fields,
    }
    data = {key: value for key, value in data.items() if value is not None}  # None drops a default key
    path.write_text(json.dumps(data, indent=2))
    return data


def with_client(fake: FakeLogin, use: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with fake.client() as http:
            return await use(http)

    return asyncio.run(go())


def credentials(store: TokenStore, fake: FakeLogin) -> Credentials:
    return with_client(fake, store.credentials)


def test_store_health_follows_the_clock(token_path: Path, settings: Settings, clock: Clock) -> None:
    write_token(token_path, expires_in_min=60)
    heard: list[TokenStatus] = []
    store = TokenStore(settings, on_status=heard.append, clock=clock)
    assert store.reload() == TokenStatus(
        TokenHealth.VALID,
        NOW + timedelta(minutes=60),
        "social",
        str(token_path),
        "expires in 60 min",
        renewable=True,
        login="Google, from the Kiro token file",
        profile_arn="arn:aws:codewhisperer:us-east-1:…9012:profile/SOCIAL",
    )
    clock.advance(minutes=56)
    assert (store.status().health, store.status().detail) == (
        TokenHealth.EXPIRING,
        "expires in 4 min; renewed on the next request",
    )
    clock.advance(minutes=5)
    assert (store.status().health, store.status().detail) == (
        TokenHealth.EXPIRED,
        "expired 1 min ago; renewed on the next request",
    )
    assert [s.health for s in heard] == [TokenHealth.VALID, TokenHealth.EXPIRING, TokenHealth.EXPIRED]


def test_store_missing_file_asks_to_sign_in(settings: Settings, fake: FakeLogin) -> None:
    store = TokenStore(settings)
    status = store.reload()
    assert status.health is TokenHealth.MISSING
    assert str(settings.token_file) in status.detail
    with pytest.raises(KiroLoginRequired, match=r"No Kiro login found in .*: open Kiro and sign in"):
        credentials(store, fake)
    assert fake.requests == []


def test_store_unreadable_file_without_a_good_token(token_path: Path, settings: Settings) -> None:
    token_path.write_text("{not json")
    assert TokenStore(settings).reload().health is TokenHealth.UNREADABLE


def test_store_keeps_good_token_when_file_turns_unreadable(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=60)
    store = TokenStore(settings, clock=clock)
    store.reload()
    token_path.write_text('{"accessToken": "aoa-')  # Kiro stopped mid-write
    assert store.reload().health is TokenHealth.VALID
    assert credentials(store, fake).access_token == "aoa-old"
    assert fake.requests == []


def test_store_reload_waits_out_a_truncated_file(token_path: Path, settings: Settings, clock: Clock) -> None:
    whole = json.dumps({"accessToken": "aoa-1", "refreshToken": "aor-1", "expiresAt": "2026-01-10T14:00:00.000Z"})
    token_path.write_text(whole[:20])
    finisher = threading.Timer(0.3, token_path.write_text, args=(whole,))
    finisher.start()
    try:
        status = TokenStore(settings, clock=clock).reload()
    finally:
        finisher.join()
    assert (status.health, status.expires_at) == (TokenHealth.VALID, NOW + timedelta(hours=2))


def test_store_concurrent_requests_share_one_refresh(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-10)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.delay = 0.05

    async def hundred(http: httpx.AsyncClient) -> list[Credentials]:
        return await asyncio.gather(*(store.credentials(http) for _ in range(100)))

    results = with_client(fake, hundred)
    assert len(fake.refreshes()) == 1
    assert {c.access_token for c in results} == {"aoa-new-1"}
    assert {c.expires_at for c in results} == {NOW + timedelta(hours=1)}
    assert store.status().health is TokenHealth.VALID
    assert json.loads(token_path.read_text())["refreshToken"] == "aor-new-1"


def test_store_refresh_after_rejection_refreshes_once(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=60)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.delay = 0.02

    async def rejected_by_many(http: httpx.AsyncClient) -> list[Credentials]:
        old = await store.credentials(http)
        renewed = await asyncio.gather(*(store.refresh_after_rejection(http, old) for _ in range(10)))
        late = await store.refresh_after_rejection(http, old)  # a straggler still holding the old token
        return [*renewed, late]

    results = with_client(fake, rejected_by_many)
    assert len(fake.refreshes()) == 1
    assert {c.access_token for c in results} == {"aoa-new-1"}


def test_store_adopts_token_kiro_refreshed_meanwhile(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-1)
    store = TokenStore(settings, clock=clock)
    store.reload()
    # Kiro refreshed on its own; the watcher has not told the store yet.
    write_token(token_path, expires_in_min=60, accessToken="aoa-kiro", refreshToken="aor-kiro")
    assert credentials(store, fake).access_token == "aoa-kiro"
    assert fake.requests == []


def test_store_rejection_adopts_token_kiro_refreshed_meanwhile(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=60)
    store = TokenStore(settings, clock=clock)
    store.reload()
    old = credentials(store, fake)
    write_token(token_path, expires_in_min=60, accessToken="aoa-kiro", refreshToken="aor-kiro")
    assert with_client(fake, lambda http: store.refresh_after_rejection(http, old)).access_token == "aoa-kiro"
    assert fake.refreshes() == []


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_store_writes_back_like_kiro(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin, mode: int
) -> None:
    original = write_token(token_path, expires_in_min=-5, futureKiroKey={"nested": [1, 2]})
    os.chmod(token_path, mode)
    store = TokenStore(settings, clock=clock)
    store.reload()
    clock.now = datetime(2026, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)
    credentials(store, fake)
    text = token_path.read_text()
    data = json.loads(text)
    assert data == {
        **original,
        "accessToken": "aoa-new-1",
        "refreshToken": "aor-new-1",
        "expiresAt": "2026-01-10T13:00:00.123Z",
    }
    assert text == json.dumps(data, indent=2)
    assert stat.S_IMODE(token_path.stat().st_mode) == mode
    assert [p.name for p in token_path.parent.iterdir()] == ["kiro-auth-token.json"]


def test_store_does_not_overwrite_kiro_during_refresh(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.during_refresh = lambda: write_token(
        token_path, expires_in_min=60, accessToken="aoa-kiro", refreshToken="aor-kiro"
    )
    assert credentials(store, fake).access_token == "aoa-kiro"
    assert json.loads(token_path.read_text())["refreshToken"] == "aor-kiro"
    assert store.status().health is TokenHealth.VALID


def test_store_write_failure_keeps_new_token(
    token_path: Path,
    settings: Settings,
    clock: Clock,
    fake: FakeLogin,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()

    def refuse(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tokens, "write_back", refuse)
    with caplog.at_level(logging.WARNING):
        assert credentials(store, fake).access_token == "aoa-new-1"
    assert "Could not write the renewed Kiro token" in caplog.text
    assert json.loads(token_path.read_text())["accessToken"] == "aoa-old"
    assert credentials(store, fake).access_token == "aoa-new-1"
    assert len(fake.refreshes()) == 1


def test_store_refused_refresh_needs_login_until_new_file(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.failures.append(httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(KiroLoginRequired, match="log in to Kiro again"):
        credentials(store, fake)
    status = store.status()
    assert status.health is TokenHealth.REFRESH_FAILED and "log in to Kiro" in status.detail
    with pytest.raises(KiroLoginRequired, match="log in to Kiro again"):
        credentials(store, fake)
    assert len(fake.refreshes()) == 1  # a dead refresh token is not tried again
    write_token(token_path, expires_in_min=60, accessToken="aoa-relogin", refreshToken="aor-relogin")
    assert store.reload().health is TokenHealth.VALID
    assert credentials(store, fake).access_token == "aoa-relogin"


def test_store_unreachable_login_service_is_retried_after_a_backoff(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.failures.append(httpx.ConnectError("connection refused"))
    with pytest.raises(KiroUnavailable, match="Could not reach Kiro's login service"):
        credentials(store, fake)
    status = store.status()
    assert status.health is TokenHealth.REFRESH_FAILED and "Could not reach" in status.detail
    with pytest.raises(KiroUnavailable, match="tries again in") as waiting:
        credentials(store, fake)  # within the backoff: no second call to a service that just failed
    assert waiting.value.retry_after in (2, 3)
    assert len(fake.refreshes()) == 1
    clock.advance(seconds=3)
    assert credentials(store, fake).access_token == "aoa-new-1"
    assert len(fake.refreshes()) == 2
    assert store.status().health is TokenHealth.VALID


def test_store_backoff_grows_per_failure_with_jitter(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.failures.extend([httpx.Response(500), httpx.ReadTimeout("slow"), httpx.Response(502)])
    waits = []
    for _ in range(3):
        with pytest.raises(KiroUnavailable):
            credentials(store, fake)  # the attempt
        with pytest.raises(KiroUnavailable) as waiting:
            credentials(store, fake)  # inside the backoff
        assert waiting.value.retry_after is not None
        waits.append(waiting.value.retry_after)
        clock.advance(seconds=waiting.value.retry_after)
    assert len(fake.refreshes()) == 3
    assert [2 <= waits[0] <= 3, 4 <= waits[1] <= 5, 8 <= waits[2] <= 10] == [True, True, True]
    assert credentials(store, fake).access_token == "aoa-new-1"
    assert [tokens.backoff_delay(n, jitter=0).total_seconds() for n in (1, 2, 3, 20)] == [2, 4, 8, 120]
    assert tokens.backoff_delay(1, jitter=1).total_seconds() == 2.5


def test_store_unreachable_login_service_shared_by_waiters(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.delay = 0.02
    fake.failures.append(httpx.Response(503))

    async def many(http: httpx.AsyncClient) -> list[Credentials | BaseException]:
        return await asyncio.gather(*(store.credentials(http) for _ in range(20)), return_exceptions=True)

    outcomes = with_client(fake, many)
    assert all(isinstance(o, KiroUnavailable) for o in outcomes)
    assert len(fake.refreshes()) == 1


def test_store_unreachable_login_service_keeps_working_token(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=2)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.failures.extend([httpx.Response(502), httpx.Response(502)])
    assert credentials(store, fake).access_token == "aoa-old"
    assert store.status().health is TokenHealth.REFRESH_FAILED
    assert credentials(store, fake).access_token == "aoa-old"
    assert len(fake.refreshes()) == 1  # not every request waits on a service that is down
    clock.advance(seconds=31)
    assert credentials(store, fake).access_token == "aoa-old"
    assert len(fake.refreshes()) == 2
    clock.advance(seconds=31)
    assert credentials(store, fake).access_token == "aoa-new-1"


def test_store_environment_seed_refreshes_in_memory(settings: Settings, clock: Clock, fake: FakeLogin) -> None:
    seeded = replace(settings, refresh_token="aor-seed")
    store = TokenStore(seeded, clock=clock)
    assert store.reload().source == "environment"
    creds = credentials(store, fake)
    assert (creds.access_token, creds.auth_kind) == ("aoa-new-1", "environment")
    assert json.loads(fake.refreshes()[0].content) == {"refreshToken": "aor-seed"}
    assert not settings.token_file.exists()
    assert store.reload().health is TokenHealth.VALID  # the renewed seed survives a reload
    assert credentials(store, fake).access_token == "aoa-new-1"


def test_store_token_file_wins_over_environment_seed(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=60)
    seeded = replace(settings, access_token="aoa-seed", refresh_token="aor-seed")
    store = TokenStore(seeded, clock=clock)
    assert store.reload().source == str(token_path)
    assert credentials(store, fake).access_token == "aoa-old"


def test_store_works_across_event_loops(token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()
    fake.delay = 0.01

    def crowd() -> set[str]:
        # Waiters contend for the refresh lock, which binds an asyncio.Lock to the running loop.
        async def five(http: httpx.AsyncClient) -> set[str]:
            return {c.access_token for c in await asyncio.gather(*(store.credentials(http) for _ in range(5)))}

        return with_client(fake, five)

    assert crowd() == {"aoa-new-1"}
    clock.advance(hours=2)
    assert crowd() == {"aoa-new-2"}  # a new loop in the same thread
    clock.advance(hours=2)
    result: list[set[str]] = []
    thread = threading.Thread(target=lambda: result.append(crowd()))  # and one in a new thread, as after a restart
    thread.start()
    thread.join(timeout=10)
    assert result == [{"aoa-new-3"}]
    assert len(fake.refreshes()) == 3


def write_idc(token_path: Path, registration_expires: str) -> None:
    write_token(
        token_path,
        expires_in_min=-5,
        authMethod="IdC",
        provider="Enterprise",
        clientIdHash="0a1b2c",
        region="us-west-2",
        profileArn=None,
    )
    (token_path.parent / "0a1b2c.json").write_text(
        json.dumps({"clientId": "cid", "clientSecret": "csecret", "expiresAt": registration_expires})
    )


def test_store_idc_refresh_uses_registration_and_profile_file(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_idc(token_path, "2026-04-01T00:00:00.000Z")
    settings.profile_file.write_text(json.dumps({"arn": EU_ARN, "name": "EU"}))
    store = TokenStore(settings, clock=clock)
    assert store.reload().auth_kind == "idc"
    creds = credentials(store, fake)
    assert (creds.access_token, creds.profile_arn, creds.region, creds.extra_headers) == (
        "aoa-new-1",
        EU_ARN,
        "eu-central-1",
        {},
    )
    (refresh,) = fake.requests
    assert str(refresh.url) == "https://oidc.test/token"
    assert json.loads(refresh.content)["clientSecret"] == "csecret"
    written = json.loads(token_path.read_text())
    assert (written["clientIdHash"], written["region"], "profileArn" in written) == ("0a1b2c", "us-west-2", False)


def test_store_idc_expired_registration_needs_login(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_idc(token_path, "2026-01-01T00:00:00.000Z")
    store = TokenStore(settings, clock=clock)
    store.reload()
    with pytest.raises(KiroLoginRequired, match="registration expired on 2026-01-01: log in to Kiro again"):
        credentials(store, fake)
    assert fake.requests == []
    assert store.status().health is TokenHealth.REFRESH_FAILED


def test_store_lists_profiles_when_nothing_names_one(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=60, provider="Enterprise", clientIdHash="0a1b2c", profileArn=None)
    store = TokenStore(settings, clock=clock)
    store.reload()

    async def twice(http: httpx.AsyncClient) -> list[Credentials]:
        return list(await asyncio.gather(*(store.credentials(http) for _ in range(5))))

    results = with_client(fake, twice)
    assert {c.profile_arn for c in results} == {EU_ARN}
    (listing,) = fake.requests
    # kiro-protocol-2026.md §2.1: JSON 1.0 on the AWS surface of the first profile region.
    assert str(listing.url) == "https://codewhisperer.us-east-1.amazonaws.com/"
    assert listing.headers["x-amz-target"] == "AmazonCodeWhispererService.ListAvailableProfiles"
    assert listing.headers["authorization"] == "Bearer aoa-old"
    fake.profiles = []
    write_token(token_path, expires_in_min=60, accessToken="aoa-other", provider="Enterprise", profileArn=None)
    store.reload()
    with pytest.raises(KiroLoginRequired, match="No Kiro profile found"):
        credentials(store, fake)


def test_store_external_idp_credentials_carry_token_type(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(
        token_path,
        expires_in_min=60,
        authMethod="external_idp",
        provider="ExternalIdp",
        tokenEndpoint="https://login.example.com/token",
    )
    store = TokenStore(settings, clock=clock)
    store.reload()
    assert credentials(store, fake).extra_headers == {"TokenType": "EXTERNAL_IDP"}


def test_store_describe_names_source_kind_and_health(token_path: Path, settings: Settings, clock: Clock) -> None:
    write_token(token_path, expires_in_min=90)
    store = TokenStore(settings, clock=clock)
    store.reload()
    text = store.describe()
    assert f"Token source: {token_path}" in text
    assert "Login:        Google, from the Kiro token file" in text
    assert "Login kind:   social" in text
    assert "Health:       valid (expires in 90 min)" in text
    # The account id is shortened wherever the ARN is shown (issue #10: never in full in a log).
    assert "arn:aws:codewhisperer:us-east-1:…9012:profile/SOCIAL" in text
    assert ARN not in text


def test_store_never_reveals_tokens(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()
    shown: list[str] = []
    fake.failures.extend([httpx.ConnectError("refused"), httpx.Response(400, json={"error": "invalid_grant"})])
    for _ in range(2):
        with pytest.raises((KiroUnavailable, KiroLoginRequired)) as caught:
            credentials(store, fake)
        shown += [str(caught.value), repr(caught.value), store.status().detail]
        clock.advance(seconds=5)  # past the backoff after the unreachable service
    token_path.write_text('{"accessToken": "aoa-old", "refreshTok')
    store.reload()
    write_token(token_path, expires_in_min=-5, refreshToken="aor-other")
    store.reload()
    creds = credentials(store, fake)
    shown += [repr(store), repr(creds), str(creds), store.describe(), store.status().detail, caplog.text]
    text = "\n".join(shown)
    for secret in ("aoa-old", "aor-old", "aor-other", "aoa-new-1", "aor-new-1"):
        assert secret not in text


def test_store_failure_of_replaced_login_is_not_kept(
    token_path: Path, settings: Settings, clock: Clock, fake: FakeLogin
) -> None:
    write_token(token_path, expires_in_min=-5)
    store = TokenStore(settings, clock=clock)
    store.reload()

    def kiro_logs_in_again() -> None:
        # Kiro writes a new login and the watcher reloads it while our refresh is being refused.
        write_token(token_path, expires_in_min=60, accessToken="aoa-kiro", refreshToken="aor-kiro")
        store.reload()

    fake.during_refresh = kiro_logs_in_again
    fake.failures.append(httpx.Response(400, json={"error": "invalid_grant"}))
    assert credentials(store, fake).access_token == "aoa-kiro"
    assert store.status().health is TokenHealth.VALID

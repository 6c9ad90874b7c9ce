"""The model catalog is per login (kiro-protocol-2026.md §1.4, §8): ids and limits from the login's own
ListAvailableModels, in the wire form of its control plane, and `additionalModelRequestFields` only for
models whose entry carries a schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.runtime import Runtime
from tests.fake_kiro import FakeKiro, write_client_registration, write_token_file
from tests.fixtures_kiro import KIRO_URL_VARIABLES, KiroEnv
from tests.fixtures_proxy import start_proxy


@pytest.fixture
def running() -> Iterator[list[Runtime]]:
    started: list[Runtime] = []
    yield started
    for runtime in started:
        runtime.service.close()


def test_catalog_follows_the_login(
    fake_kiro: FakeKiro, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, running: list[Runtime]
) -> None:
    for variable in KIRO_URL_VARIABLES:
        monkeypatch.setenv(variable, fake_kiro.base_url)
    monkeypatch.setenv("KIRO_Q_URL", fake_kiro.q_url)
    idc = fake_kiro.accounts.add_idc()
    idc.models = ("auto", "claude-haiku-4.5", "claude-sonnet-4.6")
    write_token_file(isolated_home, idc)
    write_client_registration(isolated_home, idc)
    runtime = start_proxy(KiroEnv(fake_kiro, idc, isolated_home, isolated_home / "unused"))
    running.append(runtime)
    client = openai.OpenAI(
        base_url=f"http://{runtime.state.snapshot().address}/v1", api_key=DEFAULT_API_KEY, max_retries=0
    )

    ids = {m.id for m in client.models.list()}
    listing = [r for r in fake_kiro.requests if r.operation == "ListAvailableModels"]

    assert {"claude-haiku-4.5", "claude-sonnet-4.6"} <= ids
    assert "claude-opus-4.5" not in ids and "claude-sonnet-4.5" not in ids
    # Identity Center: JSON 1.0 on the AWS surface, with the login's profile ARN (2026 §1.4).
    assert listing and all(r.host == "q" and r.json["profileArn"] == idc.profile_arn for r in listing)

    # A model with a schema gets native thinking fields; one without never does (2026 §8).
    for model in ("claude-sonnet-4-6", "claude-haiku-4-5"):
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "think"}], reasoning_effort="medium"
        )
    with_schema, without = fake_kiro.chat_requests()[-2:]
    assert "additionalModelRequestFields" in with_schema.json
    assert "additionalModelRequestFields" not in without.json
    assert set(without.json) <= {"conversationState", "profileArn"}

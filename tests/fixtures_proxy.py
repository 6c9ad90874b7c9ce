"""A running ki2api (the real composition root, on a free port) in front of the fake Kiro."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ki2api_tray.config import DEFAULT_API_KEY, load_settings
from ki2api_tray.runtime import Runtime, build_runtime
from tests.fixtures_kiro import KiroEnv


@dataclass
class Proxy:
    runtime: Runtime
    url: str  # "http://127.0.0.1:PORT"
    kiro: KiroEnv

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    def openai(self, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.openai_base, api_key=DEFAULT_API_KEY, max_retries=0, **kwargs)

    def async_openai(self, **kwargs: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.openai_base, api_key=DEFAULT_API_KEY, max_retries=0, **kwargs)

    def anthropic(self, **kwargs: Any) -> Any:
        import anthropic

        return anthropic.Anthropic(base_url=self.url, api_key=DEFAULT_API_KEY, max_retries=0, **kwargs)


def start_proxy(kiro: KiroEnv, **overrides: Any) -> Runtime:
    runtime = build_runtime(load_settings({"port": 0, **overrides}))
    assert runtime.service.start(), runtime.state.snapshot().last_error
    return runtime


@pytest.fixture
def proxy(kiro_env: KiroEnv) -> Iterator[Proxy]:
    runtime = start_proxy(kiro_env)
    try:
        yield Proxy(runtime, f"http://{runtime.state.snapshot().address}", kiro_env)
    finally:
        runtime.service.close()

"""Model names clients send -> the Kiro model that serves them; the model list `/v1/models` shows."""

from __future__ import annotations

from typing import Any

import pytest

from ki2api_tray.core.errors import InvalidRequest
from ki2api_tray.core.model import ModelInfo
from ki2api_tray.core.models import (
    STATIC_MODELS,
    ModelNotOffered,
    normalise,
    parse_model_list,
    public_model_ids,
    resolve_model,
)

STATIC_IDS = [m.model_id for m in STATIC_MODELS]


def _offered(*ids: str) -> tuple[ModelInfo, ...]:
    return tuple(ModelInfo(i) for i in ids)


def test_static_models_cover_the_documented_dotted_ids() -> None:
    assert STATIC_IDS == [
        "auto",
        "claude-sonnet-4",
        "claude-sonnet-4.5",
        "claude-sonnet-4.6",
        "claude-haiku-4.5",
        "claude-opus-4.5",
        "claude-opus-4.6",
        "claude-opus-4.7",
        "claude-opus-4.8",
    ]


def test_static_models_native_thinking_only_for_models_that_take_it() -> None:
    native = {m.model_id for m in STATIC_MODELS if m.supports_native_thinking}
    assert native == {"claude-sonnet-4.6", "claude-opus-4.6", "claude-opus-4.7", "claude-opus-4.8"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
        ("claude-opus-4-1-20250805", "claude-opus-4.1"),
        ("Claude-Opus-4.7", "claude-opus-4.7"),
        ("anthropic/claude-opus-4-6", "claude-opus-4.6"),
        ("openrouter/anthropic/claude-sonnet-4.6", "claude-sonnet-4.6"),
        ("claude-3-7-sonnet-20250219", "claude-sonnet-3.7"),
        ("claude-3-5-haiku-latest", "claude-haiku-3.5"),
        ("claude-3.5-sonnet", "claude-sonnet-3.5"),
        ("claude-3-haiku-20240307", "claude-haiku-3"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("CLAUDE_SONNET_4_20250514_V1_0", "claude-sonnet-4"),
        ("CLAUDE_SONNET_4_5_20250929_V1_0", "claude-sonnet-4.5"),
        ("CLAUDE_3_7_SONNET_20250219_V1_0", "claude-sonnet-3.7"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4.5"),
        ("auto", "auto"),
        ("auto-kiro", "auto"),
        ("deepseek-3.2", "deepseek-3.2"),
        ("qwen3-coder-next", "qwen3-coder-next"),
        ("  claude-sonnet-4.5  ", "claude-sonnet-4.5"),
    ],
)
def test_normalise_spellings(name: str, expected: str) -> None:
    assert normalise(name) == expected


@pytest.mark.parametrize(
    ("name", "model_id", "thinking"),
    [
        ("claude-sonnet-4-20250514", "claude-sonnet-4", False),
        ("claude-sonnet-4", "claude-sonnet-4", False),
        ("claude-sonnet-4-5", "claude-sonnet-4.5", False),
        ("claude-sonnet-4.5", "claude-sonnet-4.5", False),
        ("claude-opus-4-6", "claude-opus-4.6", False),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5", False),
        ("CLAUDE_SONNET_4_5_20250929_V1_0", "claude-sonnet-4.5", False),
        ("claude-sonnet-4-5-thinking", "claude-sonnet-4.5", True),
        ("claude-sonnet-4-20250514-thinking", "claude-sonnet-4", True),
        ("claude-opus-4.7-thinking", "claude-opus-4.7", True),
        ("auto", "auto", False),
    ],
)
def test_resolve_model_offered_names_resolve_exactly(name: str, model_id: str, thinking: bool) -> None:
    resolved = resolve_model(name, STATIC_MODELS)
    assert (resolved.model.model_id, resolved.thinking, resolved.fell_back) == (model_id, thinking, False)
    assert resolved.requested == name


@pytest.mark.parametrize(
    ("name", "offered", "model_id"),
    [
        # The closest version of the same family wins.
        ("claude-opus-4-1", STATIC_IDS, "claude-opus-4.5"),
        ("claude-sonnet-5", STATIC_IDS, "claude-sonnet-4.6"),
        ("claude-3-7-sonnet-20250219", STATIC_IDS, "claude-sonnet-4"),
        ("CLAUDE_3_7_SONNET_20250219_V1_0", STATIC_IDS, "claude-sonnet-4"),
        ("claude-3-5-haiku-latest", STATIC_IDS, "claude-haiku-4.5"),
        ("claude-sonnet-4-20250514", ["auto", "claude-sonnet-4.5", "claude-sonnet-4.6"], "claude-sonnet-4.5"),
        # The same major version is nearer than any other; a tie goes to the newer model.
        ("claude-sonnet-4.5", ["claude-sonnet-4", "claude-sonnet-5"], "claude-sonnet-4"),
        ("claude-opus-4.6", ["claude-opus-4.5", "claude-opus-4.7"], "claude-opus-4.7"),
        # No version asked for: the newest of the family.
        ("claude-sonnet", STATIC_IDS, "claude-sonnet-4.6"),
        # Bare line names mean the newest of that line.
        ("opus", STATIC_IDS, "claude-opus-4.8"),
        # Not a Claude model at all: KI2API_DEFAULT_MODEL (auto by default).
        ("gpt-4o", STATIC_IDS, "auto"),
    ],
)
def test_resolve_model_unoffered_name_falls_back_to_nearest(name: str, offered: list[str], model_id: str) -> None:
    resolved = resolve_model(name, _offered(*offered))
    assert resolved.model.model_id == model_id
    assert resolved.fell_back is True


def test_resolve_model_returns_the_offered_model_info() -> None:
    live = ModelInfo("claude-sonnet-4.5", "Sonnet", max_input_tokens=123, supports_native_thinking=True)
    assert resolve_model("claude-sonnet-4-5", [live]).model is live


def test_resolve_model_empty_available_uses_static_list() -> None:
    assert resolve_model("claude-opus-4-8", []).model.model_id == "claude-opus-4.8"


@pytest.mark.parametrize("name", ["", "   ", None, 42, ["claude-sonnet-4"]])
def test_resolve_model_rejects_missing_name(name: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve_model(name, STATIC_MODELS)
    assert info.value.param == "model"
    assert info.value.status == 400


def test_parse_model_list_reads_pages_and_fields() -> None:
    pages: list[Any] = [
        {
            "models": [
                {
                    "modelId": "claude-sonnet-4.5",
                    "modelName": "Claude Sonnet 4.5",
                    "tokenLimits": {"maxInputTokens": 200000, "maxOutputTokens": 8192},
                    "rateMultiplier": 1.0,
                    "rateUnit": "Credit",
                    "supportedInputTypes": ["TEXT", "IMAGE"],
                },
                {
                    "modelId": "claude-opus-4.6",
                    "modelName": "Claude Opus 4.6",
                    "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 64000},
                    "supportedInputTypes": ["TEXT"],
                    "additionalModelRequestFieldsSchema": {"type": "object"},
                },
            ],
            "nextToken": "page-2",
        },
        {"models": [{"modelId": "deepseek-3.2"}]},
    ]
    models = parse_model_list(pages)
    assert models == (
        ModelInfo("claude-sonnet-4.5", "Claude Sonnet 4.5", 200_000, 8192, True, False),
        ModelInfo("claude-opus-4.6", "Claude Opus 4.6", 1_000_000, 64_000, False, True),
        ModelInfo("deepseek-3.2", "deepseek-3.2"),
    )


def test_parse_model_list_native_thinking_comes_from_the_schema_not_the_static_list() -> None:
    # claude-opus-4.6 takes native thinking statically, but a live entry without the schema wins.
    (model,) = parse_model_list([{"models": [{"modelId": "claude-opus-4.6"}]}])
    assert model.supports_native_thinking is False
    assert model.max_input_tokens == 1_000_000  # missing limits fall back to the static entry


@pytest.mark.parametrize(
    "junk",
    [
        "not a page",
        {"models": "nope"},
        {"models": [None, 7, "claude-sonnet-4", {}, {"modelId": ""}, {"modelId": 12}, {"modelName": "x"}]},
        {"models": [{"modelId": "auto", "tokenLimits": {"maxInputTokens": -1, "maxOutputTokens": True}}]},
        {"nextToken": "x"},
    ],
)
def test_parse_model_list_ignores_junk(junk: Any) -> None:
    models = parse_model_list([junk, {"models": [{"modelId": "claude-sonnet-4"}]}])
    ids = [m.model_id for m in models]
    assert ids[-1] == "claude-sonnet-4"
    assert all(isinstance(i, str) and i for i in ids)
    for model in models:
        assert model.max_input_tokens > 0 and model.max_output_tokens > 0


def test_parse_model_list_keeps_first_of_duplicate_ids() -> None:
    pages = [{"models": [{"modelId": "auto", "modelName": "first"}]}, {"models": [{"modelId": "auto"}]}]
    assert [m.display_name for m in parse_model_list(pages)] == ["first"]


def test_public_model_ids_seed_first_then_offered_with_dashed_aliases() -> None:
    ids = public_model_ids(_offered("auto", "claude-sonnet-4", "claude-sonnet-4.5", "claude-opus-4.6", "glm-5"))
    assert ids == [
        "claude-sonnet-4-20250514",
        "auto",
        "auto-kiro",
        "claude-sonnet-4",
        "claude-sonnet-4.5",
        "claude-sonnet-4-5",
        "claude-opus-4.6",
        "claude-opus-4-6",
        "glm-5",
    ]


def test_public_model_ids_every_listed_id_resolves_without_fallback() -> None:
    ids = public_model_ids(STATIC_MODELS)
    assert len(ids) == len(set(ids))
    for public_id in ids:
        assert resolve_model(public_id, STATIC_MODELS).fell_back is False, public_id


def test_public_model_ids_no_duplicate_when_seed_is_offered() -> None:
    ids = public_model_ids(_offered("claude-sonnet-4-20250514", "auto"))
    assert ids == ["claude-sonnet-4-20250514", "auto", "auto-kiro"]


@pytest.mark.parametrize(
    ("name", "offered"),
    [
        # Never another family: an Opus request is not answered by Haiku, Sonnet or auto.
        ("claude-opus-4-6", ["auto", "claude-sonnet-4.5", "claude-haiku-4.5"]),
        ("claude-haiku-4-5", ["claude-sonnet-4.5", "auto"]),
    ],
)
def test_resolve_model_no_same_family_is_model_not_found(name: str, offered: list[str]) -> None:
    with pytest.raises(ModelNotOffered) as caught:
        resolve_model(name, _offered(*offered))
    assert caught.value.status == 404 and caught.value.code == "model_not_found"
    assert all(model_id in caught.value.message for model_id in offered)


def test_resolve_model_strict_refuses_what_nearest_would_map() -> None:
    assert resolve_model("claude-opus-4-1", STATIC_MODELS).model.model_id == "claude-opus-4.5"
    with pytest.raises(ModelNotOffered) as caught:
        resolve_model("claude-opus-4-1", STATIC_MODELS, fallback="strict")
    assert "KI2API_MODEL_FALLBACK=strict" in caught.value.message
    assert resolve_model("claude-opus-4.5", STATIC_MODELS, fallback="strict").fell_back is False


@pytest.mark.parametrize(
    ("default", "offered", "model_id"),
    [
        ("claude-sonnet-4.5", STATIC_IDS, "claude-sonnet-4.5"),
        ("claude-sonnet-4-5", STATIC_IDS, "claude-sonnet-4.5"),
        ("glm-5", ["auto", "glm-5"], "glm-5"),
        ("auto", ["claude-sonnet-4.5", "glm-5"], None),
    ],
)
def test_resolve_model_non_claude_names_use_default(
    default: str, offered: list[str], model_id: str | None
) -> None:
    if model_id is None:
        with pytest.raises(ModelNotOffered, match="KI2API_DEFAULT_MODEL"):
            resolve_model("gpt-4o", _offered(*offered), default_model=default)
        return
    resolved = resolve_model("gpt-4o", _offered(*offered), default_model=default)
    assert (resolved.model.model_id, resolved.fell_back) == (model_id, True)
    # A non-Claude model Kiro does offer is used by its own name.
    assert resolve_model("glm-5", _offered("auto", "glm-5"), default_model=default).model.model_id == "glm-5"

"""Public model names <-> Kiro model ids: the static list, ListAvailableModels parsing, and resolution.

Clients send Anthropic-style names (`claude-sonnet-4-5-20250929`), legacy enum ids or provider-prefixed
names; Kiro wants its dotted ids (`claude-sonnet-4.5`, kiro-protocol.md §4.1). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import InvalidRequest
from .model import ModelInfo

_STANDARD_WINDOW = 200_000
# KRS dates sonnet-4.6 / opus-4.6 moving to 1M on 2026-03-24 and AIC lists the later opus models at 1M, so the
# 4.6+ generation gets 1M; older models keep 200k (AIC's 1M for opus-4.5 is not corroborated). The live
# `tokenLimits` from ListAvailableModels replaces these whenever it is available (kiro-protocol.md §4.2).
_LARGE_WINDOW = 1_000_000


def _static(model_id: str, name: str, window: int = _STANDARD_WINDOW, output: int = 64_000) -> ModelInfo:
    # §10.2: only these models accept `additionalModelRequestFields`; every other model must not receive it.
    native = model_id in {"claude-sonnet-4.6", "claude-opus-4.6", "claude-opus-4.7", "claude-opus-4.8"}
    return ModelInfo(model_id, name, window, output, supports_images=True, supports_native_thinking=native)


STATIC_MODELS: tuple[ModelInfo, ...] = (
    _static("auto", "Auto (Kiro picks the model)"),
    _static("claude-sonnet-4", "Claude Sonnet 4"),
    _static("claude-sonnet-4.5", "Claude Sonnet 4.5"),
    _static("claude-sonnet-4.6", "Claude Sonnet 4.6", _LARGE_WINDOW),
    _static("claude-haiku-4.5", "Claude Haiku 4.5"),
    _static("claude-opus-4.5", "Claude Opus 4.5"),
    _static("claude-opus-4.6", "Claude Opus 4.6", _LARGE_WINDOW),
    # §10.2: the 4.7/4.8 models take up to 128k output tokens.
    _static("claude-opus-4.7", "Claude Opus 4.7", _LARGE_WINDOW, 128_000),
    _static("claude-opus-4.8", "Claude Opus 4.8", _LARGE_WINDOW, 128_000),
)
"""What ki2api offers when ListAvailableModels cannot be reached (JW's fallback list, kiro-protocol.md §4.1)."""

# The name Claude Code and the original ki2api used by default; it must always resolve.
SEED_MODEL_NAME = "claude-sonnet-4-20250514"

_STATIC_BY_ID = {m.model_id: m for m in STATIC_MODELS}


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _parse_entry(entry: Mapping[str, Any]) -> ModelInfo | None:
    model_id = entry.get("modelId")
    if not isinstance(model_id, str) or not model_id.strip():
        return None
    model_id = model_id.strip()
    base = _STATIC_BY_ID.get(model_id, ModelInfo(model_id))
    name = entry.get("modelName")
    limits = entry.get("tokenLimits")
    limits = limits if isinstance(limits, Mapping) else {}
    input_types = entry.get("supportedInputTypes")
    images = base.supports_images
    if isinstance(input_types, list):
        images = "IMAGE" in input_types
    return ModelInfo(
        model_id=model_id,
        display_name=name if isinstance(name, str) and name else base.display_name or model_id,
        max_input_tokens=_positive_int(limits.get("maxInputTokens")) or base.max_input_tokens,
        max_output_tokens=_positive_int(limits.get("maxOutputTokens")) or base.max_output_tokens,
        supports_images=images,
        # The schema is Kiro's own statement that the model takes native thinking fields (§10.2).
        supports_native_thinking="additionalModelRequestFieldsSchema" in entry,
    )


def parse_model_list(payloads: Iterable[Mapping[str, Any]]) -> tuple[ModelInfo, ...]:
    """Models from ListAvailableModels response pages (§4.3), in order, first occurrence of an id wins.

    Entries that are not objects or have no string `modelId` are skipped rather than failing the list.
    """
    seen: dict[str, ModelInfo] = {}
    for page in payloads:
        if not isinstance(page, Mapping):
            continue
        entries = page.get("models")
        if not isinstance(entries, list):
            continue
        for entry in entries:
            info = _parse_entry(entry) if isinstance(entry, Mapping) else None
            if info is not None and info.model_id not in seen:
                seen[info.model_id] = info
    return tuple(seen.values())


# --- normalisation ------------------------------------------------------------------------------

# Legacy enum ids end in `_V1_0` (K2A, KI2); Bedrock ids end in `-v1:0`.
_VERSION_SUFFIX = re.compile(r"[-_]v\d+(?:[_:]\d+)?$")
# Bedrock ids carry a vendor prefix, optionally with a cross-region prefix (`us.anthropic.`).
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2,4}\.)?anthropic\.")
_DATE = re.compile(r"-\d{8}(?=-|$)")
_LATEST = re.compile(r"-latest(?=-|$)")
# `claude-3-7-sonnet...` / `claude-3.7-sonnet...` / `claude-3-sonnet...`: version before family.
_VERSION_FIRST = re.compile(r"^claude-(\d+)(?:[-.](\d{1,2}))?-([a-z]+)(.*)$")
# `sonnet-4-5` -> `sonnet-4.5`; the minor has at most two digits so dates are never mistaken for one.
_DASHED_VERSION = re.compile(r"(?<=[a-z])-(\d+)-(\d{1,2})(?=-|$)")
_ZERO_MINOR = re.compile(r"(?<=[a-z]-)(\d+)\.0(?=-|$)")
_ALIASES = {"auto-kiro": "auto"}  # JW exposes `auto` as `auto-kiro` so it does not clash with Cursor's own `auto`


def normalise(name: str) -> str:
    """A model name in Kiro's canonical spelling, e.g. `CLAUDE_3_7_SONNET_20250219_V1_0` -> `claude-sonnet-3.7`.

    Follows JW's steps (kiro-protocol.md §4.2): drop a `provider/` prefix, lower-case, drop dates and
    `-latest`, dotted versions, family before version. The result may name a model Kiro does not offer.
    """
    text = name.strip().rsplit("/", 1)[-1].lower()
    text = _BEDROCK_PREFIX.sub("", text)
    text = _VERSION_SUFFIX.sub("", text).replace("_", "-")
    text = _LATEST.sub("", _DATE.sub("", text))
    match = _VERSION_FIRST.match(text)
    if match:
        major, minor, family, rest = match.groups()
        text = f"claude-{family}-{major}" + (f".{minor}" if minor else "") + rest
    text = _DASHED_VERSION.sub(r"-\1.\2", text)
    text = _ZERO_MINOR.sub(r"\1", text)  # Anthropic's `claude-sonnet-4-0` alias means `claude-sonnet-4`
    return _ALIASES.get(text, text)


# --- resolution ---------------------------------------------------------------------------------

_THINKING_SUFFIX = "-thinking"
_FAMILY_VERSION = re.compile(r"^(?P<family>.*?)-(?P<major>\d+)(?:\.(?P<minor>\d+))?(?P<variant>.*)$")


@dataclass(frozen=True)
class ResolvedModel:
    """Which Kiro model serves a requested name; `fell_back` is True when it is only the nearest offered one."""

    requested: str
    model: ModelInfo
    thinking: bool = False
    fell_back: bool = False


def _family_version(name: str) -> tuple[str, str, int | None]:
    """(family, variant, version as major*1000+minor) or the whole name as family when it has no version."""
    match = _FAMILY_VERSION.match(name)
    if match is None:
        return name, "", None
    version = int(match["major"]) * 1000 + int(match["minor"] or 0)
    return match["family"], match["variant"], version


FallbackPolicy = Literal["nearest", "strict"]
FALLBACK_POLICIES: tuple[FallbackPolicy, ...] = ("nearest", "strict")
# Claude Code and some clients say just the line name; they mean that line's newest model.
_BARE_LINES = {"sonnet", "opus", "haiku"}


class ModelNotOffered(InvalidRequest):
    """A model this Kiro account does not offer (OpenAI's 404 `model_not_found`; Anthropic's not_found_error)."""

    status = 404
    code = "model_not_found"


def _same_family(name: str, available: Sequence[ModelInfo]) -> ModelInfo | None:
    """The offered model of the same family and variant whose version is closest (newest on a tie), if any."""
    family, variant, version = _family_version(name)
    best: tuple[int, int] | None = None
    chosen: ModelInfo | None = None
    for info in available:
        other_family, other_variant, other_version = _family_version(normalise(info.model_id))
        if other_version is None or (other_family, other_variant) != (family, variant):
            continue
        # Closest version wins; on a tie (or when no version was asked for) the newer one.
        distance = abs(other_version - version) if version is not None else 0
        key = (distance, -other_version)
        if best is None or key < best:
            best, chosen = key, info
    return chosen


def _not_offered(name: str, offered: Sequence[ModelInfo], why: str) -> ModelNotOffered:
    ids = ", ".join(info.model_id for info in offered)
    return ModelNotOffered(
        f"The model {name!r} is not offered by Kiro on this account: {why}. Offered: {ids}.", param="model"
    )


def _split_thinking(name: str) -> tuple[str, bool]:
    wanted = normalise(name)
    if wanted in _BARE_LINES:
        wanted = f"claude-{wanted}"
    if wanted.endswith(_THINKING_SUFFIX):
        return normalise(wanted[: -len(_THINKING_SUFFIX)]), True
    return wanted, False


def resolve_model(
    name: object,
    available: Sequence[ModelInfo],
    *,
    default_model: str = "auto",
    fallback: FallbackPolicy = "nearest",
) -> ResolvedModel:
    """Map a client's model name to one Kiro offers; an empty `available` means the static list.

    An offered name (in any spelling `normalise` knows) is used as is; a `-thinking` suffix asks for extended
    thinking (Kiro-Go's convention, §4.2). A Claude name Kiro does not offer goes to the nearest offered model
    of the same family (`fallback="nearest"`), never to another family or `auto`; with no such model, or with
    `fallback="strict"`, it is a 404 listing what is offered. A name that is no Claude model at all (`gpt-4o`,
    a client's default) goes to `default_model` (KI2API_DEFAULT_MODEL).
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("model must be a non-empty string naming a model", param="model")
    offered = tuple(available) or STATIC_MODELS
    wanted, thinking = _split_thinking(name)
    for info in offered:
        if normalise(info.model_id) == wanted:
            return ResolvedModel(name, info, thinking=thinking, fell_back=False)
    if not wanted.startswith("claude"):
        default, default_thinking = _split_thinking(default_model)
        for info in offered:
            if normalise(info.model_id) == default:
                return ResolvedModel(name, info, thinking=thinking or default_thinking, fell_back=True)
        chosen = _same_family(default, offered) if default.startswith("claude") and fallback == "nearest" else None
        if chosen is None:
            raise _not_offered(
                name,
                offered,
                f"it is not a Claude model and KI2API_DEFAULT_MODEL={default_model!r} is not offered either",
            )
        return ResolvedModel(name, chosen, thinking=thinking or default_thinking, fell_back=True)
    if fallback == "strict":
        raise _not_offered(name, offered, "KI2API_MODEL_FALLBACK=strict asks for exact names")
    chosen = _same_family(wanted, offered)
    if chosen is None:
        raise _not_offered(name, offered, "no model of the same family is offered")
    return ResolvedModel(name, chosen, thinking=thinking, fell_back=True)


def public_models(available: Sequence[ModelInfo]) -> list[tuple[str, ModelInfo]]:
    """What `/v1/models` lists: every name accepted without guessing, with the Kiro model it means.

    The seed's default name (when a Sonnet serves it), every offered Kiro id, the dashed spelling of each
    Claude id (Anthropic SDKs and Claude Code write `claude-opus-4-6`), and `auto-kiro` for `auto`.
    """
    offered = tuple(available) or STATIC_MODELS
    entries: list[tuple[str, ModelInfo]] = []
    seed = _same_family(normalise(SEED_MODEL_NAME), offered)
    if seed is not None:
        entries.append((SEED_MODEL_NAME, seed))
    for info in offered:
        entries.append((info.model_id, info))
        if info.model_id.startswith("claude-") and "." in info.model_id:
            entries.append((info.model_id.replace(".", "-"), info))
        if info.model_id == "auto":
            entries.append(("auto-kiro", info))
    unique: dict[str, ModelInfo] = {}
    for model_id, info in entries:
        unique.setdefault(model_id, info)
    return list(unique.items())


def public_model_ids(available: Sequence[ModelInfo]) -> list[str]:
    """The ids `/v1/models` lists, in order."""
    return [model_id for model_id, _ in public_models(available)]

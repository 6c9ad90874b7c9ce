"""The neutral vocabulary every protocol translates to and from.

OpenAI and Anthropic requests become a `ChatRequest`; Kiro's event stream becomes a sequence of
`StreamEvent`s; each client protocol turns those events back into its own wire shape. Everything here
is a frozen value: no I/O, no behaviour beyond small derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image sent by the client.

    `data` is plain base64 (no `data:` prefix) and `media_type` is e.g. `image/png`. When the client
    gave an http(s) URL, only `url` is set; the server fetches it and replaces the part before the
    request reaches the Kiro translator, which only ever sees inline data.
    """

    media_type: str = ""
    data: str = ""
    url: str = ""


@dataclass(frozen=True)
class ToolCallPart:
    """An assistant's request to call a tool; `arguments` is the JSON text of an object."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResultPart:
    """The result of a tool call, carried on the user side of the conversation."""

    tool_call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class ThinkingPart:
    """Reasoning the assistant produced earlier, sent back by the client in history."""

    text: str
    signature: str = ""


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(frozen=True)
class Message:
    role: Role
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """All text parts joined, the way a single-string protocol would see them."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    # A JSON schema; dicts are not hashable, so keep it out of the generated hash.
    parameters: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class ToolChoice:
    """`auto`: the model decides; `none`: no tool; `any`: some tool; `tool`: the one named.

    `allowed`, when not empty, limits the tools the model may call to these names (OpenAI's
    `allowed_tools`); the others stay in the request but are not offered to Kiro.
    """

    mode: Literal["auto", "none", "any", "tool"]
    name: str = ""
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseFormat:
    """Structured output: the answer's text must be JSON valid against `schema`.

    OpenAI `response_format` (`json_schema`, or `json_object` as an open object schema) and Anthropic
    `output_format` / `output_config.format` all become this. `name` and `description` describe the
    schema to the model.
    """

    schema: dict[str, Any] = field(hash=False, compare=True)
    name: str = ""
    description: str = ""


Effort = Literal["low", "medium", "high", "max"]


@dataclass(frozen=True)
class Thinking:
    """Extended thinking asked for by the client (OpenAI `reasoning_effort`, Anthropic `thinking`)."""

    budget_tokens: int | None = None
    effort: Effort | None = None


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn as every protocol agrees on it.

    `messages` hold the conversation in order; system text (including OpenAI `developer` and
    Anthropic top-level `system`) is gathered in `system`. `model` is the name the client sent;
    resolving it to a Kiro model id is the server's job.
    """

    model: str
    messages: tuple[Message, ...]
    system: str = ""
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    stream: bool = False
    thinking: Thinking | None = None
    # The answer ends before the first of these strings (which is not sent).
    stop: tuple[str, ...] = ()
    response_format: ResponseFormat | None = None
    # False: only the first tool call of an answer reaches the client.
    parallel_tool_calls: bool = True
    # Top-level fields the client sent that Kiro cannot honour, by name: logged, and data for the request log.
    dropped: tuple[str, ...] = ()


# --- what comes back -------------------------------------------------------------------------

StopReason = Literal["end_turn", "tool_use", "max_tokens", "content_filter", "stop_sequence"]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A complete tool call. Arguments are only ever emitted whole and valid (see kiro_stream)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    """Token accounting for one response; `estimated` is False only when Kiro reported exact counts.

    `credits` is what Kiro billed (its `meteringEvent`s); `context_percent` how full Kiro says the model's
    context window was (its `contextUsageEvent`), 0-100.
    """

    input_tokens: int
    output_tokens: int
    credits: float | None = None
    estimated: bool = True
    context_percent: float | None = None


@dataclass(frozen=True)
class Adjustment:
    """One thing ki2api changed in a request on its way to Kiro, for the person asking "why did Kiro say 400?".

    `kind` is a stable code ("history_merged", "tool_renamed", "tool_dropped", "image_fetched", ...) that the
    status page explains in words; `detail` is short and never message text: a tool name, a count.
    """

    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Finish:
    reason: StopReason
    # The stop string that ended the answer, when `reason` is "stop_sequence".
    stop_sequence: str = ""


@dataclass(frozen=True)
class SearchResult:
    """One web search hit; `published_ms` is epoch milliseconds, as Kiro's search gives it."""

    title: str
    url: str
    snippet: str = ""
    published_ms: int | None = None


@dataclass(frozen=True)
class WebSearch:
    """A web search ki2api ran for the model (or for the client); `error` says why it found nothing, if it failed."""

    id: str
    query: str
    results: tuple[SearchResult, ...] = ()
    error: str = ""


StreamEvent = TextDelta | ThinkingDelta | ToolCall | WebSearch | Usage | Finish
"""A translated stream is any number of deltas, tool calls and searches, then one `Usage`, then one `Finish`."""


@dataclass(frozen=True)
class ModelInfo:
    """One model Kiro offers (from ListAvailableModels, or the static fallback list)."""

    model_id: str
    display_name: str = ""
    max_input_tokens: int = 200_000
    max_output_tokens: int = 64_000
    supports_images: bool = True
    # Kiro accepts `additionalModelRequestFields.thinking` only for models that advertise it.
    supports_native_thinking: bool = False

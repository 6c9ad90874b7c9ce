"""Relay: one chat turn from a neutral `ChatRequest` to Kiro and back to neutral stream events.

It resolves the model, downloads URL images, builds Kiro's request, and runs the stream through the
translator. It knows nothing about OpenAI or Anthropic wire shapes; the server does that.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace

from ..core.kiro_request import KiroRequest, build_kiro_request
from ..core.kiro_stream import KiroStreamTranslator
from ..core.model import Adjustment, ChatRequest, ImagePart, StreamEvent
from ..core.models import FallbackPolicy, ResolvedModel, resolve_model
from ..core.tokencount import estimate_request_tokens
from .images import ImageFetcher
from .pooled_client import PooledClient

log = logging.getLogger(__name__)

# Kiro rejects bodies above ~615 KB as "Improperly formed" (kiro-protocol.md §3.6); stay under it.
MAX_KIRO_BODY = 600_000


@dataclass(frozen=True)
class Turn:
    """A request ready to send: what Kiro gets, and what the translator needs to read the answer."""

    chat: ChatRequest
    model: ResolvedModel
    kiro: KiroRequest
    input_tokens: int
    login: str = ""  # the kind of login that pays for it
    adjustments: tuple[Adjustment, ...] = ()  # everything ki2api changed on the way, for the request log


def conversation_key(chat: ChatRequest) -> str:
    """The same for every turn of one conversation (its system prompt and first user message), so a pool
    of accounts can keep a conversation on one account; a digest, so no message text is kept."""
    first = next((m.text for m in chat.messages if m.role == "user"), "")
    text = f"{chat.system}\0{first}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:24]


class Relay:
    def __init__(
        self, client: PooledClient, images: ImageFetcher, *, default_model: str = "auto", fallback: str = "nearest"
    ) -> None:
        self._client = client
        self._images = images
        self._default_model = default_model
        self._fallback: FallbackPolicy = "strict" if fallback == "strict" else "nearest"

    async def prepare(self, chat: ChatRequest, *, reminder: str = "") -> Turn:
        """The turn for `chat`; `reminder` is an extra instruction for a retry (see kiro/answer.py)."""
        resolved = resolve_model(
            chat.model, await self._client.models(), default_model=self._default_model, fallback=self._fallback
        )
        adjustments: list[Adjustment] = []
        if resolved.fell_back:
            log.info("model %r is not offered by Kiro; using %s instead", chat.model, resolved.model.model_id)
            adjustments.append(Adjustment("model_substituted", f"{chat.model} -> {resolved.model.model_id}"))
        fetched = sum(1 for m in chat.messages for p in m.parts if isinstance(p, ImagePart) and p.url and not p.data)
        chat = await self._images.fetch_images(chat)
        if fetched:
            adjustments.append(Adjustment("image_fetched", str(fetched)))
        creds = await self._client.credentials()
        kiro = build_kiro_request(
            chat,
            model=resolved.model,
            profile_arn=creds.profile_arn,
            conversation_id=str(uuid.uuid4()),
            thinking=resolved.thinking or chat.thinking is not None,
            max_body_bytes=MAX_KIRO_BODY,
            reminder=reminder,
        )
        kiro = replace(kiro, affinity=conversation_key(chat))
        return Turn(
            chat=chat,
            model=resolved,
            kiro=kiro,
            input_tokens=estimate_request_tokens(chat),
            login=creds.auth_kind,
            adjustments=(*adjustments, *kiro.adjustments),
        )

    async def events(self, turn: Turn) -> AsyncGenerator[list[StreamEvent], None]:
        """One batch of events per network chunk from Kiro (possibly empty), ending with Usage and Finish."""
        translator = KiroStreamTranslator(
            tool_names=turn.kiro.tool_names,
            known_tools=[tool.name for tool in turn.chat.tools],
            thinking=turn.kiro.thinking,
            input_tokens=turn.input_tokens,
            context_window=turn.model.model.max_input_tokens,
        )
        # Closing this generator early (a stop string matched, the client left) closes the Kiro request.
        frames_of = self._client.stream(turn.kiro)
        async with contextlib.aclosing(frames_of) as stream:
            async for frames in stream:
                batch: list[StreamEvent] = []
                for frame in frames:
                    batch.extend(translator.feed(frame))
                yield batch
        yield translator.finish()

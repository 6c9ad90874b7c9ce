"""Web search through Kiro's `/mcp` (kiro-protocol-2026.md §6), and the rounds that let a model use it mid-answer.

`WebSearcher.search` is one JSON-RPC call on the AWS surface (`KIRO_Q_URL`). `search_rounds` runs a turn in
which the model may call the search function ki2api offered it: each search is run here, shown to the
client as a `WebSearch` event, and answered to the model in a follow-up Kiro request, for at most
`MAX_ROUNDS` rounds. The model's other tool calls end the turn as usual, for the client to run.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx

from ..config import Settings
from ..core.errors import Ki2apiError, KiroUnavailable
from ..core.model import (
    ChatRequest,
    Finish,
    Message,
    Part,
    SearchResult,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolResultPart,
    Usage,
    WebSearch,
)
from ..core.web_search import WebSearchUnavailable, mcp_body, parse_mcp_answer, query_from_arguments, summary_text
from .answers import error_for_status
from .relay import Relay, Turn
from .token_refresh import KIRO_IDE_VERSION, machine_id
from .upstream import KiroClient

log = logging.getLogger(__name__)

MAX_ROUNDS = 5
SEARCH_TIMEOUT = 30.0
_ALNUM = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def request_id() -> str:
    """§6.1: `web_search_tooluse_<22 alnum>_<epoch ms>_<8 alnum>`, the shape Kiro's own clients send."""
    return f"web_search_tooluse_{_random(22)}_{int(time.time() * 1000)}_{_random(8)}"


def search_id() -> str:
    """The id the client sees for one search (Anthropic's server tool ids start `srvtoolu_`)."""
    return f"srvtoolu_{uuid.uuid4().hex[:24]}"


class WebSearcher:
    def __init__(self, settings: Settings, client: KiroClient, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._http = http
        self._agent = f"KiroIDE-{KIRO_IDE_VERSION}-{machine_id()}"

    async def search(self, query: str) -> tuple[SearchResult, ...]:
        """The hits for `query`; an empty tuple when there are none; `WebSearchUnavailable` when Kiro refuses."""
        creds = await self._client.credentials()
        url = f"{self._settings.q_base(creds.region)}/mcp"
        headers = {
            "Authorization": f"Bearer {creds.access_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"aws-sdk-js/1.0.0 ua/2.1 lang/js m/E {self._agent}",
            "x-amz-user-agent": f"aws-sdk-js/1.0.0 {self._agent}",
            "x-amzn-codewhisperer-optout": "true",
            "x-amzn-kiro-agent-mode": "vibe",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=1",
            **creds.extra_headers,
        }
        if creds.profile_arn:
            headers["x-amzn-kiro-profile-arn"] = creds.profile_arn
        body = mcp_body(query, request_id=request_id(), profile_arn=creds.profile_arn or "")
        try:
            response = await self._http.post(url, json=body, headers=headers, timeout=SEARCH_TIMEOUT)
        except httpx.HTTPError as exc:
            raise KiroUnavailable(f"Could not reach Kiro's web search ({type(exc).__name__}); try again.") from exc
        if response.status_code in (400, 403, 404):
            said = error_for_status(response.status_code, response.content).message
            raise WebSearchUnavailable(
                "Kiro's web search is not available to this login (Kiro offers it only to some plans and "
                f"regions, and needs a profile ARN). {said}",
                upstream_status=response.status_code,
            )
        if response.status_code != 200:
            raise error_for_status(response.status_code, response.content)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return parse_mcp_answer(answer)

    async def run(self, query: str) -> WebSearch:
        """One search as an event; failures become its `error`, so a model's turn can go on without it."""
        if not query:
            return WebSearch(search_id(), query, error="the search had no query")
        try:
            return WebSearch(search_id(), query, await self.search(query))
        except Ki2apiError as error:
            log.warning("web search failed: %s", error.message)
            return WebSearch(search_id(), query, error=error.message)


async def search_rounds(
    relay: Relay, searcher: WebSearcher, turn: Turn, *, tool_name: str, max_rounds: int = MAX_ROUNDS
) -> AsyncIterator[list[StreamEvent]]:
    """The events of a turn in which the model may search; like `Relay.events`, ending with Usage and Finish."""
    usages: list[Usage] = []
    for round_number in range(1, max_rounds + 1):
        searches: list[ToolCall] = []
        texts: list[str] = []
        other_calls = False
        finish = Finish("end_turn")
        async for batch in relay.events(turn):
            out: list[StreamEvent] = []
            for event in batch:
                if isinstance(event, ToolCall) and event.name == tool_name:
                    searches.append(event)
                elif isinstance(event, Usage):
                    usages.append(event)
                elif isinstance(event, Finish):
                    finish = event
                else:
                    other_calls = other_calls or isinstance(event, ToolCall)
                    if isinstance(event, TextDelta):
                        texts.append(event.text)
                    out.append(event)
            if out:
                yield out
        found = [await searcher.run(query_from_arguments(call.arguments)) for call in searches]
        if found:
            yield list(found)
        if not searches or other_calls or round_number == max_rounds:
            if searches and not other_calls:
                log.info("web search: stopped after %d rounds", max_rounds)
            reason = "end_turn" if searches and finish.reason == "tool_use" and not other_calls else finish.reason
            yield [_total(usages), Finish(reason)]
            return
        turn = await relay.prepare(_continued(turn.chat, texts, searches, found))


def _continued(chat: ChatRequest, texts: list[str], calls: list[ToolCall], found: list[WebSearch]) -> ChatRequest:
    """The conversation with the model's search calls and their results added, for the next round."""
    said: list[Part] = [TextPart("".join(texts))] if "".join(texts).strip() else []
    asked = tuple(said) + tuple(ToolCallPart(c.id, c.name, c.arguments) for c in calls)
    answers = tuple(
        ToolResultPart(call.id, summary_text(search.query, search.results, search.error), is_error=bool(search.error))
        for call, search in zip(calls, found, strict=True)
    )
    return replace(chat, messages=(*chat.messages, Message("assistant", asked), Message("user", answers)))


def _total(usages: list[Usage]) -> Usage:
    if not usages:
        return Usage(0, 0)
    credits = [u.credits for u in usages if u.credits is not None]
    return Usage(
        input_tokens=usages[0].input_tokens,
        output_tokens=sum(u.output_tokens for u in usages),
        credits=sum(credits) if credits else None,
        estimated=any(u.estimated for u in usages),
    )

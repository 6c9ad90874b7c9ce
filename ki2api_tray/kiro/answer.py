"""One answer for one request: Kiro attempts, structured output, forced tool choice and the client's limits.

Both routes get their events from `answer`, so every rule about retrying lives here: a structured answer
that does not match its schema, or a text answer where a tool call was forced, is asked for once more,
and only while nothing has reached the client (the first attempt is held back until it is judged).
Stop strings, max_tokens and "one tool call at a time" are applied last, by `OutputGuard`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, best_match

from ..core.answer_plan import AnswerPlan, Reading, plan_answer, read_answer
from ..core.errors import InvalidRequest, UpstreamError
from ..core.model import ChatRequest, ResponseFormat, StreamEvent, ToolCall
from ..core.output_guard import OutputGuard
from .relay import Relay, Turn

log = logging.getLogger(__name__)

Batches = AsyncGenerator[list[StreamEvent], None]
ATTEMPTS = 2


async def answer(relay: Relay, chat: ChatRequest) -> tuple[Turn, Batches]:
    """Prepare the turn (errors here are still proper HTTP errors) and the events that answer it."""
    if chat.dropped:
        log.debug("fields Kiro cannot honour, not sent: %s", ", ".join(chat.dropped))
    validator = _validator(chat.response_format) if chat.response_format is not None else None
    plan = plan_answer(chat)
    turn = await relay.prepare(plan.chat)
    return turn, _guarded(relay, turn, plan, validator, chat)


async def _guarded(
    relay: Relay, turn: Turn, plan: AnswerPlan, validator: jsonschema.protocols.Validator | None, chat: ChatRequest
) -> Batches:
    guard = OutputGuard(
        stop=chat.stop,
        max_tokens=chat.max_tokens,
        single_call=not chat.parallel_tool_calls,
        input_tokens=turn.input_tokens,
    )
    source = _attempts(relay, turn, plan, validator) if plan.needs_whole_answer else relay.events(turn)
    async with contextlib.aclosing(source) as batches:
        async for batch in batches:
            if not guard.active:
                yield batch
                continue
            yield guard.feed(batch)
            if guard.done:
                if guard.dropped_calls:
                    log.info(
                        "kept the first tool call only (parallel tool calls are off); dropped %d", guard.dropped_calls
                    )
                return  # leaving the loop closes the Kiro request: nobody needs the rest


async def _attempts(
    relay: Relay, turn: Turn, plan: AnswerPlan, validator: jsonschema.protocols.Validator | None
) -> Batches:
    problem = ""
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1:
            chat, reminder = plan.retry(problem)
            turn = await relay.prepare(chat, reminder=reminder)
        events: list[StreamEvent] = []
        released = False
        async with contextlib.aclosing(relay.events(turn)) as batches:
            async for batch in batches:
                if released:
                    yield batch
                    continue
                events.extend(batch)
                # A forced call has come: this answer will do, so what was held back can go, and the rest streams.
                released = plan.answer_tool is None and any(isinstance(e, ToolCall) for e in batch)
                yield events if released else []  # [] keeps the pipe (and its keep-alives) going
        if released:
            return
        reading = read_answer(events, plan.answer_tool)
        if plan.answer_tool is None:
            if reading.called_tools or attempt == ATTEMPTS:
                if not reading.called_tools:
                    log.warning("Kiro answered in text although a tool call was required, twice; passing the text on")
                yield events
                return
            log.info("Kiro answered in text although a tool call was required; asking once more, more firmly")
            continue
        if reading.called_tools:
            yield events  # the model wants a client tool's result before it answers
            return
        text, problem = _checked(reading, validator)
        if text is not None:
            yield reading.answered(text)
            return
        log.info("Kiro's structured answer was not usable (%s); attempt %d of %d", problem, attempt, ATTEMPTS)
    raise UpstreamError(
        f"Kiro's answer did not match the requested JSON schema after {ATTEMPTS} attempts: {problem}.",
        code="schema_mismatch",
    )


def _checked(reading: Reading, validator: jsonschema.protocols.Validator | None) -> tuple[str | None, str]:
    """The answer's JSON text if it is valid, else None and a sentence naming what is wrong and where."""
    if reading.candidate is None:
        return None, "it contained no JSON answer"
    try:
        value = json.loads(reading.candidate)
    except ValueError as exc:
        return None, f"it is not valid JSON ({exc})"
    if validator is not None:
        try:
            error = best_match(validator.iter_errors(value))
        except Exception as exc:  # e.g. a `$ref` that points nowhere: only found while validating
            raise InvalidRequest(
                f"The response schema cannot be applied: {str(exc)[:300]}.", param="response_format"
            ) from None
        if error is not None:
            return None, f"at {_path(error.absolute_path)}: {error.message[:300]}"
    return json.dumps(value, ensure_ascii=False), ""


def _path(parts: Any) -> str:
    """A JSON path such as `$.items[2].name`."""
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _validator(fmt: ResponseFormat) -> jsonschema.protocols.Validator:
    """A validator for the client's schema; a schema that cannot be used is the client's 400, before Kiro is asked."""
    try:
        cls = jsonschema.validators.validator_for(fmt.schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(fmt.schema)
        validator: jsonschema.protocols.Validator = cls(fmt.schema)
        # A trial run resolves the root `$ref`s, so one that points nowhere is found now rather than later.
        best_match(validator.iter_errors({}))
    except SchemaError as exc:
        reason = f"at {_path(exc.absolute_path)}: {exc.message[:300]}"
    except Exception as exc:  # jsonschema raises several kinds for unusable schemas ($schema: 5, dangling $ref)
        reason = str(exc)[:300]
    else:
        return validator
    raise InvalidRequest(f"The response schema is not a valid JSON schema: {reason}.", param="response_format")

"""Structured output from the client libraries that failed on ki2api before issue 16, against the fake Kiro.

Each library sends its own request shape (LangChain and the Agents SDK a strict `json_schema`, instructor
its JSON-schema mode); the fake answers with the forced answer tool, as a real model does.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ki2api_tray.config import DEFAULT_API_KEY
from tests.fake_kiro import StreamReply, scenarios
from tests.fixtures_proxy import Proxy

MODEL = "claude-sonnet-4-20250514"
ANSWER_TOOL = "structured_answer"


class Person(BaseModel):
    name: str
    age: int


def script_answer(proxy: Proxy, *answers: dict[str, Any]) -> None:
    for answer in answers:
        events = scenarios.text("Let me answer.") + scenarios.tool_call(ANSWER_TOOL, json.dumps(answer))
        proxy.kiro.fake.script(StreamReply(events + scenarios.usage()))


def declared_schema(proxy: Proxy) -> dict[str, Any]:
    body = proxy.kiro.fake.chat_requests()[-1].json
    context = body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
    specs = {spec["toolSpecification"]["name"]: spec["toolSpecification"] for spec in context["tools"]}
    schema: dict[str, Any] = specs[ANSWER_TOOL]["inputSchema"]["json"]
    return schema


def test_langchain_with_structured_output_default_mode(proxy: Proxy) -> None:
    from langchain_openai import ChatOpenAI

    script_answer(proxy, {"name": "Ada", "age": 36})
    llm = ChatOpenAI(base_url=proxy.openai_base, api_key=DEFAULT_API_KEY, model=MODEL, max_retries=0, timeout=15)

    result = llm.with_structured_output(Person).invoke("Who wrote the first program?")

    assert result == Person(name="Ada", age=36)
    assert set(declared_schema(proxy)["properties"]) == {"name", "age"}


def test_langchain_streams_structured_output(proxy: Proxy) -> None:
    from langchain_openai import ChatOpenAI

    script_answer(proxy, {"name": "Grace", "age": 85})
    llm = ChatOpenAI(base_url=proxy.openai_base, api_key=DEFAULT_API_KEY, model=MODEL, max_retries=0, timeout=15)

    parts = list(llm.with_structured_output(Person).stream("Who?"))

    assert parts[-1] == Person(name="Grace", age=85)


def test_instructor_json_schema_mode(proxy: Proxy) -> None:
    import instructor

    # A wrong first answer is retried by ki2api itself, so instructor sees only the valid one.
    script_answer(proxy, {"name": "Ada", "age": "old"}, {"name": "Ada", "age": 36})
    client = instructor.from_openai(proxy.openai(timeout=15.0), mode=instructor.Mode.JSON_SCHEMA)

    person = client.chat.completions.create(
        model=MODEL, response_model=Person, messages=[{"role": "user", "content": "Who?"}], max_retries=0
    )

    assert (person.name, person.age) == ("Ada", 36)
    assert len(proxy.kiro.fake.chat_requests()) == 2


def test_openai_agents_sdk_output_type(proxy: Proxy) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled

    set_tracing_disabled(True)  # no trace upload to OpenAI from a test
    script_answer(proxy, {"name": "Ada", "age": 36})
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=proxy.async_openai(timeout=15.0))
    agent = Agent(name="historian", instructions="Answer with the person.", model=model, output_type=Person)

    result = Runner.run_sync(agent, "Who wrote the first program?")

    assert result.final_output == Person(name="Ada", age=36)

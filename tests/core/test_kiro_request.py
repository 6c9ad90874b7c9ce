"""ChatRequest -> Kiro body: every shaping rule of kiro-protocol.md §3.3-§3.6 and §10, on the decoded JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ki2api_tray.core.errors import ContextLengthExceeded, InvalidRequest, UnsupportedImage
from ki2api_tray.core.kiro_request import KiroRequest, build_kiro_request
from ki2api_tray.core.model import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    TextPart,
    Thinking,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from ki2api_tray.core.model import ModelInfo as Model

ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/TEST"
CONV = "6f1c1a9e-0000-4000-8000-000000000001"
SONNET = Model("claude-sonnet-4.5")
OPUS_NATIVE = Model("claude-opus-4.6", supports_native_thinking=True)
PNG = "iVBORw0KGgo="
READ = ToolSpec("Read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}})


def user(*parts: Part | str) -> Message:
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def assistant(*parts: Part | str) -> Message:
    return Message("assistant", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def call(call_id: str, name: str = "Read", arguments: str = '{"path": "a.py"}') -> ToolCallPart:
    return ToolCallPart(call_id, name, arguments)


def result(call_id: str, content: str = "ok", is_error: bool = False) -> ToolResultPart:
    return ToolResultPart(call_id, content, is_error)


def build(*messages: Message, model: Model = SONNET, thinking: bool = False, **fields: Any) -> dict[str, Any]:
    return decode(build_request(*messages, model=model, thinking=thinking, **fields))


def build_request(*messages: Message, model: Model = SONNET, thinking: bool = False, **fields: Any) -> KiroRequest:
    request = ChatRequest(model="m", messages=tuple(messages), **fields)
    built = build_kiro_request(request, model=model, profile_arn=ARN, conversation_id=CONV, thinking=thinking)
    assert not violations(decode(built)), violations(decode(built))
    return built


def decode(built: KiroRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(built.body)
    return body


def current(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def history(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body["conversationState"].get("history", []))


def tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [t["toolSpecification"] for t in current(body).get("userInputMessageContext", {}).get("tools", [])]


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    found = [(path, value)]
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _walk(sub, f"{path}.{key}")
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found += _walk(sub, f"{path}[{index}]")
    return found


def violations(body: dict[str, Any]) -> list[str]:
    """What the real Kiro would reject, read independently from kiro-protocol.md §3.3-§3.5."""
    problems: list[str] = []
    state = body["conversationState"]
    if state.get("chatTriggerType") != "MANUAL" or not state.get("conversationId") or not body.get("profileArn"):
        problems.append("trigger type, conversation id or profileArn")
    turns = [*state.get("history", []), state["currentMessage"]]
    declared = {
        t["toolSpecification"]["name"].lower()
        for t in current(body).get("userInputMessageContext", {}).get("tools", [])
    }
    previous_uses: set[str] = set()
    for index, turn in enumerate(turns):
        expected = "userInputMessage" if index % 2 == 0 else "assistantResponseMessage"
        if list(turn) != [expected]:
            problems.append(f"turn {index} is {list(turn)}, expected {expected}")
            continue
        message = turn[expected]
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            problems.append(f"turn {index} has empty content")
        if expected == "userInputMessage":
            if message.get("modelId") != body_model(body) or message.get("origin") != "AI_EDITOR":
                problems.append(f"turn {index} lacks modelId/origin")
            results = message.get("userInputMessageContext", {}).get("toolResults", [])
            ids = [r["toolUseId"] for r in results]
            if len(ids) != len(set(ids)) or not set(ids) <= previous_uses:
                problems.append(f"turn {index} has duplicate or orphan tool results")
            for item in results:
                if item["status"] not in ("success", "error") or not item["content"][0]["text"]:
                    problems.append(f"turn {index} has a malformed tool result")
            if "context" in message or message.get("userInputMessageContext") == {}:
                problems.append(f"turn {index} has an empty context")
            previous_uses = set()
        else:
            if "modelId" in message:
                problems.append(f"assistant turn {index} carries a modelId")
            uses = message.get("toolUses")
            if uses is not None and not uses:
                problems.append(f"turn {index} has empty toolUses")
            uses = uses or []
            previous_uses = {u["toolUseId"] for u in uses}
            next_results = (
                turns[index + 1]["userInputMessage"].get("userInputMessageContext", {}).get("toolResults", [])
            )
            if previous_uses != {r["toolUseId"] for r in next_results}:
                problems.append(f"turn {index} has tool uses without results")
            for use in uses:
                if not isinstance(use["input"], dict) or use["name"].lower() not in declared:
                    problems.append(f"turn {index} uses undeclared tool {use['name']} or non-object input")
    for spec in tools(body):
        if len(spec["name"]) > 64 or not spec["description"] or len(spec["description"]) > 10_000:
            problems.append(f"tool {spec['name'][:70]} has a bad name or description")
    for path, value in _walk(body):
        if path.endswith(".additionalProperties") and ".inputSchema.json" in path:
            problems.append(f"{path} left in a schema")
        if path.endswith(".required") and value == []:
            problems.append(f"{path} is an empty required list")
        if isinstance(value, dict) and "" in value:
            problems.append(f"{path} has an empty key")
    return problems


def fake_kiro_rejection(body: dict[str, Any]) -> str | None:
    """The fake Kiro's own verdict (written by someone else from the same doc), as a second opinion."""
    from tests.fake_kiro import validation as fake  # imported here so a broken fake fails only these tests

    try:
        state = fake.check_conversation(body)
        past = fake.check_history(state)
        now = fake.check_current(state)
        fake.check_model_fields(body, now)
        fake.check_tool_pairing(past, now, fake.check_tools(now))
    except fake.Rejected as exc:
        return exc.detail
    return None


def body_model(body: dict[str, Any]) -> str:
    model_id: str = current(body)["modelId"]
    return model_id


# --- the body's frame ---------------------------------------------------------------------------------


def test_build_kiro_request_minimal_body() -> None:
    built = build_request(user("Hello"))
    assert decode(built) == {
        "conversationState": {
            "chatTriggerType": "MANUAL",
            "conversationId": CONV,
            "currentMessage": {
                "userInputMessage": {"content": "Hello", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}
            },
        },
        "profileArn": ARN,
    }
    assert built.model_id == "claude-sonnet-4.5"
    assert built.tool_names == {}
    assert built.thinking is False
    assert b" " not in built.body.replace(b"Hello", b"")  # compact JSON


def test_build_kiro_request_is_deterministic() -> None:
    messages = (user("hi", ImagePart("image/png", PNG)), assistant("yo", call("t1")), user(result("t1")))
    assert build_request(*messages, tools=(READ,)).body == build_request(*messages, tools=(READ,)).body


def test_build_kiro_request_empty_messages_rejected() -> None:
    with pytest.raises(InvalidRequest) as info:
        build_kiro_request(ChatRequest("m", ()), model=SONNET, profile_arn=ARN, conversation_id=CONV)
    assert info.value.param == "messages"
    assert "at least one message" in info.value.message


def test_build_kiro_request_keeps_non_ascii_as_utf8() -> None:
    built = build_request(user("naïve 日本語 🙂"))
    assert "日本語".encode() in built.body
    assert current(decode(built))["content"] == "naïve 日本語 🙂"


def test_build_kiro_request_lone_surrogate_still_valid_json() -> None:
    body = build(user("broken \ud800 escape"))
    assert current(body)["content"] == "broken \ud800 escape"


# --- system prompt -------------------------------------------------------------------------------------


def test_system_prompt_prefixes_current_message_without_history() -> None:
    body = build(user("Hi"), system="You are terse.")
    assert current(body)["content"] == "You are terse.\n\nHi"


def test_system_prompt_prefixes_first_history_user_message_only() -> None:
    body = build(user("first"), assistant("reply"), user("second"), system="SYS")
    assert history(body)[0]["userInputMessage"]["content"] == "SYS\n\nfirst"
    assert current(body)["content"] == "second"


def test_system_prompt_alone_when_first_user_turn_is_empty() -> None:
    body = build(assistant("I start"), user("ok"), system="SYS")
    assert history(body)[0]["userInputMessage"]["content"] == "SYS"


# --- alternation and placeholders (§3.4) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "expected_history", "expected_current"),
    [
        ([user("a")], [], "a"),
        ([user("a"), user("b")], [], "a\nb"),
        ([user("a"), assistant("b"), user("c")], ["a", "b"], "c"),
        ([user("a"), assistant("b"), assistant("c"), user("d")], ["a", "b\nc"], "d"),
        ([user("a"), user("b"), assistant("c"), user("d"), user("e")], ["a\nb", "c"], "d\ne"),
        # History must start with a user turn.
        ([assistant("hello"), user("hi")], ["(empty)", "hello"], "hi"),
        # A trailing assistant (prefill) moves into history and the current turn says Continue.
        ([user("a"), assistant("prefill")], ["a", "prefill"], "Continue"),
        ([assistant("only")], ["(empty)", "only"], "Continue"),
        # Empty and whitespace text becomes a placeholder, never an empty string.
        ([user(""), assistant(""), user("  ")], ["(empty)", "(empty)"], "Continue"),
        ([user()], [], "Continue"),
        # Several text blocks in one message (Claude Code's reminders) are separate lines.
        ([user("<system-reminder>x</system-reminder>", "do it")], [], "<system-reminder>x</system-reminder>\ndo it"),
    ],
)
def test_history_alternates_and_never_sends_empty_content(
    messages: list[Message], expected_history: list[str], expected_current: str
) -> None:
    body = build(*messages)
    roles = [next(iter(turn)) for turn in history(body)]
    assert roles == ["userInputMessage", "assistantResponseMessage"] * (len(expected_history) // 2)
    assert [next(iter(turn.values()))["content"] for turn in history(body)] == expected_history
    assert current(body)["content"] == expected_current
    assert "history" not in body["conversationState"] or expected_history


def test_history_user_messages_carry_model_id_and_assistant_messages_do_not() -> None:
    body = build(user("a"), assistant("b"), user("c"), assistant("d"), user("e"))
    for turn in history(body):
        if "userInputMessage" in turn:
            assert turn["userInputMessage"]["modelId"] == "claude-sonnet-4.5"
            assert turn["userInputMessage"]["origin"] == "AI_EDITOR"
        else:
            assert set(turn["assistantResponseMessage"]) == {"content"}


def test_history_assistant_thinking_becomes_tagged_prefix() -> None:
    body = build(user("q"), assistant(ThinkingPart("let me see", "sig"), "answer"), user("more"))
    assert history(body)[1]["assistantResponseMessage"]["content"] == "<thinking>let me see</thinking>\n\nanswer"


# --- tools ---------------------------------------------------------------------------------------------


def test_tool_round_trip_shapes_uses_and_results() -> None:
    body = build(
        user("read it"),
        assistant("Reading.", call("tooluse_1", arguments='{"path": "a.py", "": 1, "opts": {"": 2, "n": 3}}')),
        user(result("tooluse_1", "print(1)"), "thanks"),
        tools=(READ,),
    )
    assert history(body)[1]["assistantResponseMessage"] == {
        "content": "Reading.",
        "toolUses": [{"toolUseId": "tooluse_1", "name": "Read", "input": {"path": "a.py", "opts": {"n": 3}}}],
    }
    context = current(body)["userInputMessageContext"]
    assert context["toolResults"] == [
        {"toolUseId": "tooluse_1", "content": [{"text": "print(1)"}], "status": "success"}
    ]
    assert current(body)["content"] == "thanks"
    assert [t["name"] for t in tools(body)] == ["Read"]


def test_tool_results_in_history_and_error_status() -> None:
    body = build(
        user("go"),
        assistant(call("t1"), call("t2")),
        user(result("t1", "", is_error=True), result("t2", "fine")),
        assistant("done"),
        user("next"),
        tools=(READ,),
    )
    turn = history(body)[2]["userInputMessage"]
    assert turn["content"] == "(empty)"
    assert turn["userInputMessageContext"]["toolResults"] == [
        {"toolUseId": "t1", "content": [{"text": "(empty result)"}], "status": "error"},
        {"toolUseId": "t2", "content": [{"text": "fine"}], "status": "success"},
    ]
    assert "tools" not in turn["userInputMessageContext"]  # tools are declared on the current message only


def test_tool_results_current_turn_without_text_says_continue() -> None:
    body = build(user("go"), assistant(call("t1")), user(result("t1")), tools=(READ,))
    assert current(body)["content"] == "Continue"
    assert history(body)[1]["assistantResponseMessage"]["content"] == "(empty)"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"path": "a"}', {"path": "a"}),
        ("", {}),
        ("   ", {}),
        ('{"path": "a', {"raw": '{"path": "a'}),  # truncated JSON is kept, not lost
        ("[1, 2]", {"raw": "[1, 2]"}),
        ('"text"', {"raw": '"text"'}),
        ('{"": "x", "a": [{"": 1, "b": 2}]}', {"a": [{"b": 2}]}),
    ],
)
def test_tool_use_input_is_always_an_object(arguments: str, expected: dict[str, Any]) -> None:
    body = build(user("go"), assistant(call("t1", arguments=arguments)), user(result("t1")), tools=(READ,))
    assert history(body)[1]["assistantResponseMessage"]["toolUses"][0]["input"] == expected


def test_orphan_tool_result_becomes_text() -> None:
    body = build(user("go"), assistant("no tools here"), user(result("ghost", "boo"), "hi"), tools=(READ,))
    assert (
        "userInputMessageContext" not in current(body) or "toolResults" not in current(body)["userInputMessageContext"]
    )
    assert current(body)["content"] == "(Result of tool call ghost: boo)\nhi"


def test_orphan_tool_use_becomes_text() -> None:
    body = build(user("go"), assistant("Let me look.", call("t1", arguments='{"path": "x"}')), user("never mind"))
    assert history(body)[1]["assistantResponseMessage"] == {
        "content": 'Let me look.\n(Tool call `Read` with id t1 and input: {"path": "x"})'
    }
    assert "[Called" not in json.dumps(body)  # the stream parser would take that shape for a real call (§6.3)


def test_partially_answered_tool_uses_keep_only_the_answered_one() -> None:
    body = build(user("go"), assistant(call("t1"), call("t2")), user(result("t2", "two")), tools=(READ,))
    message = history(body)[1]["assistantResponseMessage"]
    assert [u["toolUseId"] for u in message["toolUses"]] == ["t2"]
    assert "t1" in message["content"]


def test_duplicate_tool_results_are_deduplicated() -> None:
    body = build(user("go"), assistant(call("t1")), user(result("t1", "a"), result("t1", "b")), tools=(READ,))
    assert current(body)["userInputMessageContext"]["toolResults"] == [
        {"toolUseId": "t1", "content": [{"text": "a"}], "status": "success"}
    ]


def test_result_for_an_older_turn_is_text_not_a_mismatched_result() -> None:
    body = build(
        user("go"),
        assistant(call("t1")),
        user(result("t1")),
        assistant("ok"),
        user(result("t1", "late again")),
        tools=(READ,),
    )
    assert "toolResults" not in current(body).get("userInputMessageContext", {})
    assert "late again" in current(body)["content"]


def test_history_tools_not_declared_get_stub_specs() -> None:
    body = build(user("go"), assistant(call("t1", name="Bash")), user(result("t1")), tools=(READ,))
    specs = {t["name"]: t for t in tools(body)}
    assert set(specs) == {"Read", "Bash"}
    assert specs["Bash"]["inputSchema"] == {"json": {"type": "object", "properties": {}}}
    assert specs["Bash"]["description"]


def test_history_tools_with_no_declared_tools_still_get_specs() -> None:
    body = build(user("go"), assistant(call("t1", name="Bash")), user(result("t1")))
    assert [t["name"] for t in tools(body)] == ["Bash"]


def test_tool_choice_none_sends_no_tools_and_flattens_tool_traffic() -> None:
    body = build(
        user("go"), assistant(call("t1")), user(result("t1", "data")), tools=(READ,), tool_choice=ToolChoice("none")
    )
    assert "userInputMessageContext" not in current(body)
    assert "toolUses" not in history(body)[1]["assistantResponseMessage"]
    assert "(Tool call `Read`" in history(body)[1]["assistantResponseMessage"]["content"]
    assert current(body)["content"] == "(Result of tool call t1: data)"


@pytest.mark.parametrize(
    ("choice", "sentence"),
    [
        (ToolChoice("any"), "You must respond by calling one of the available tools."),
        (ToolChoice("tool", "Read"), "You must respond by calling the tool `Read`."),
    ],
)
def test_tool_choice_forcing_is_written_into_the_message(choice: ToolChoice, sentence: str) -> None:
    body = build(user("look"), tools=(READ,), tool_choice=choice)
    assert current(body)["content"] == f"look\n\n{sentence}"
    assert body["conversationState"]["chatTriggerType"] == "MANUAL"


def test_tool_choice_auto_adds_nothing() -> None:
    assert current(build(user("look"), tools=(READ,), tool_choice=ToolChoice("auto")))["content"] == "look"


LONG_NAME = "mcp__" + "very_long_server_name_" * 4 + "tool"  # 97 characters, like MCP tool names


def test_long_tool_names_are_shortened_stably_and_mapped_back() -> None:
    other = LONG_NAME + "_two"
    messages = (user("go"), assistant(call("t1", name=LONG_NAME)), user(result("t1")))
    built = build_request(*messages, tools=(ToolSpec(LONG_NAME, "d"), ToolSpec(other, "e"), READ))
    body = decode(built)
    names = [t["name"] for t in tools(body)]
    assert len(names) == 3 and len(set(names)) == 3
    assert all(len(n) <= 64 for n in names)
    assert names[2] == "Read"
    assert dict(built.tool_names) == {names[0]: LONG_NAME, names[1]: other}
    assert history(body)[1]["assistantResponseMessage"]["toolUses"][0]["name"] == names[0]
    # Same name, same short name, in every request of the conversation.
    again = build_request(user("x"), tools=(ToolSpec(LONG_NAME, "d"),))
    assert tools(decode(again))[0]["name"] == names[0]


def test_long_tool_name_from_history_only_is_mapped() -> None:
    built = build_request(user("go"), assistant(call("t1", name=LONG_NAME)), user(result("t1")))
    (sent,) = built.tool_names
    assert built.tool_names[sent] == LONG_NAME
    assert len(sent) <= 64


def test_tool_names_of_64_characters_are_sent_unchanged_and_65_are_shortened_to_64() -> None:
    exact, over = "n" * 64, "a" * 65
    built = build_request(user("x"), tools=(ToolSpec(exact, "d"), ToolSpec(over, "e")))
    names = [t["name"] for t in tools(decode(built))]
    # The first 51 characters, "_" and 12 hex digits of the name's SHA-256: pinned, so a conversation keeps
    # its tool names across requests and ki2api versions.
    assert names == [exact, "a" * 51 + "_635361c48bb9"]
    assert dict(built.tool_names) == {names[1]: over}


def test_long_tool_name_shortening_is_pinned() -> None:
    body = build(user("x"), tools=(ToolSpec(LONG_NAME, "d"),))
    assert tools(body)[0]["name"] == "mcp__very_long_server_name_very_long_server_name_ve_56b1cc73fc19"


def test_every_history_tool_gets_a_spec_after_duplicates() -> None:
    # Kiro matches names case-insensitively; a duplicate is skipped, and the names after it still need specs.
    calls = [call("t1", "Read"), call("t2", "Bash"), call("t3", "bash"), call("t4", "Grep"), call("t5", "READ")]
    results = [result(c.id) for c in calls] + [result("t6")]
    body = build(user("go"), assistant(*calls, call("t6", "Glob")), user(*results), tools=(READ,))
    specs = tools(body)
    assert [t["name"] for t in specs] == ["Read", "Bash", "Grep", "Glob"]
    assert [t["description"] for t in specs[1:]] == [
        f"Tool used earlier in this conversation: {name}" for name in ("Bash", "Grep", "Glob")
    ]


@pytest.mark.parametrize(
    ("messages", "options", "where"),
    [
        pytest.param(
            (user("go"), assistant("no tools"), user(result("ghost", "boom", is_error=True), "hi")),
            {"tools": (READ,)},
            "current",
            id="orphan",
        ),
        pytest.param(
            (user("go"), assistant(call("t1")), user(result("t1", "boom", is_error=True))),
            {"tools": (READ,), "tool_choice": ToolChoice("none")},
            "current",
            id="tool-choice-none",
        ),
        pytest.param(
            (user("go"), assistant(result("t9", "boom", is_error=True)), user("next")),
            {},
            "history",
            id="on-the-assistant-side",
        ),
    ],
)
def test_failed_tool_result_as_text_keeps_its_error_marking(
    messages: tuple[Message, ...], options: dict[str, Any], where: str
) -> None:
    body = build(*messages, **options)
    text = current(body)["content"] if where == "current" else history(body)[1]["assistantResponseMessage"]["content"]
    assert "(Error result of tool call" in text and ": boom)" in text


def test_tool_choice_names_the_shortened_tool() -> None:
    body = build(user("x"), tools=(ToolSpec(LONG_NAME, "d"),), tool_choice=ToolChoice("tool", LONG_NAME))
    assert f"`{tools(body)[0]['name']}`" in current(body)["content"]


def test_tool_schema_is_cleaned_recursively() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "additionalProperties": {"type": "string"},  # a property with this name goes too (Kiro may not tell)
            "required": {"type": "boolean"},
            "items": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": {"type": "string"}, "required": ["a"]},
            },
            "choice": {"anyOf": [{"type": "object", "additionalProperties": True, "required": []}]},
        },
        "$defs": {"Thing": {"type": "object", "additionalProperties": False}},
    }
    spec = tools(build(user("x"), tools=(ToolSpec("T", "d", schema),)))[0]
    assert spec["inputSchema"]["json"] == {
        "type": "object",
        "properties": {
            "required": {"type": "boolean"},
            "items": {"type": "array", "items": {"type": "object", "required": ["a"]}},
            "choice": {"anyOf": [{"type": "object"}]},
        },
        "$defs": {"Thing": {"type": "object"}},
    }
    assert schema["additionalProperties"] is False  # the client's schema is not mutated


def test_tool_without_parameters_gets_an_object_schema() -> None:
    spec = tools(build(user("x"), tools=(ToolSpec("Now", "time", {}),)))[0]
    assert spec["inputSchema"] == {"json": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    ("description", "check"),
    [
        ("", lambda d: d == "Tool: T"),
        ("   ", lambda d: d == "Tool: T"),
        ("short", lambda d: d == "short"),
        ("x" * 10_000, lambda d: d == "x" * 10_000),
        ("x" * 25_000, lambda d: len(d) == 10_000 and d.startswith("x" * 9_000) and "truncated" in d),
    ],
)
def test_tool_description_is_never_empty_or_over_the_limit(description: str, check: Any) -> None:
    assert check(tools(build(user("x"), tools=(ToolSpec("T", description),)))[0]["description"])


@pytest.mark.parametrize("name", ["web_search", "WebSearch", "websearch"])
def test_server_web_search_tool_is_dropped(name: str) -> None:
    body = build(user("x"), tools=(ToolSpec(name, "search the web"), READ))
    assert [t["name"] for t in tools(body)] == ["Read"]


def test_duplicate_tools_are_sent_once() -> None:
    body = build(user("x"), tools=(READ, ToolSpec("read", "other"), READ))
    assert [t["name"] for t in tools(body)] == ["Read"]


def test_no_tools_means_no_context() -> None:
    assert "userInputMessageContext" not in current(build(user("x")))


# --- images --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "kiro_format"),
    [("image/png", "png"), ("image/jpeg", "jpeg"), ("image/jpg", "jpeg"), ("image/gif", "gif"), ("IMAGE/WEBP", "webp")],
)
def test_images_go_directly_under_the_user_message(media_type: str, kiro_format: str) -> None:
    body = build(user("what is this?", ImagePart(media_type, PNG)))
    assert current(body)["images"] == [{"format": kiro_format, "source": {"bytes": PNG}}]
    assert "userInputMessageContext" not in current(body)


@pytest.mark.parametrize(
    ("image", "model", "phrase"),
    [
        (ImagePart(url="https://example.com/cat.png"), SONNET, "URL"),
        (ImagePart("image/bmp", PNG), SONNET, "image/bmp"),
        (ImagePart("", PNG), SONNET, "without a type"),
        (ImagePart("image/png", PNG), Model("text-only", supports_images=False), "does not accept images"),
    ],
)
def test_unsupported_images_are_a_clear_400(image: ImagePart, model: Model, phrase: str) -> None:
    request = ChatRequest("m", (user("look", image),))
    with pytest.raises(UnsupportedImage) as info:
        build_kiro_request(request, model=model, profile_arn=ARN, conversation_id=CONV)
    assert info.value.status == 400
    assert phrase in info.value.message


def test_images_kept_only_in_recent_history_messages() -> None:
    messages: list[Message] = []
    for index in range(5):
        messages += [user(f"shot {index}", ImagePart("image/png", PNG)), assistant(f"seen {index}")]
    messages.append(user("and now?", ImagePart("image/png", PNG)))
    body = build(*messages)
    users = [t["userInputMessage"] for t in history(body) if "userInputMessage" in t]
    # The last 5 history messages are assistant 2, user 3, assistant 3, user 4 and assistant 4.
    assert ["images" in u for u in users] == [False, False, False, True, True]
    assert "An image was here" in users[0]["content"] and users[0]["content"].startswith("shot 0")
    assert "images" in current(body)


# --- thinking (§10) ------------------------------------------------------------------------------------

TAGS = "<thinking_mode>enabled</thinking_mode><max_thinking_length>{}</max_thinking_length>\n\n"


@pytest.mark.parametrize(
    ("thinking_flag", "request_thinking", "budget"),
    [
        (True, None, 16_000),
        (False, Thinking(budget_tokens=8_000), 8_000),
        (False, Thinking(budget_tokens=100), 1_024),
        (False, Thinking(budget_tokens=500_000), 32_000),
        (False, Thinking(effort="low"), 4_000),
        (False, Thinking(effort="high"), 20_000),
        (True, Thinking(effort="medium"), 10_000),
    ],
)
def test_thinking_prompt_tags_prefix_current_message(
    thinking_flag: bool, request_thinking: Thinking | None, budget: int
) -> None:
    request = ChatRequest("m", (user("a"), assistant("b"), user("why?")), system="SYS", thinking=request_thinking)
    built = build_kiro_request(request, model=SONNET, profile_arn=ARN, conversation_id=CONV, thinking=thinking_flag)
    body = decode(built)
    assert current(body)["content"] == TAGS.format(budget) + "why?"
    assert built.thinking is True
    assert "additionalModelRequestFields" not in body
    assert "<thinking_mode>" not in history(body)[0]["userInputMessage"]["content"]


def test_thinking_tags_not_added_twice() -> None:
    body = build(user("<thinking_mode>enabled</thinking_mode> go"), thinking=True)
    assert current(body)["content"] == "<thinking_mode>enabled</thinking_mode> go"


def test_thinking_off_adds_nothing() -> None:
    built = build_request(user("hi"), model=OPUS_NATIVE)
    assert "thinking" not in built.body.decode()
    assert built.thinking is False


@pytest.mark.parametrize(
    ("request_thinking", "expected"),
    [
        (None, {"thinking": {"type": "adaptive", "display": "summarized"}}),
        (
            Thinking(effort="max"),
            {"thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "max"}},
        ),
        (
            Thinking(budget_tokens=2_000),
            {"thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "low"}},
        ),
        (
            Thinking(budget_tokens=31_999),
            {"thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "high"}},
        ),
    ],
)
def test_native_thinking_uses_additional_fields_not_tags(
    request_thinking: Thinking | None, expected: dict[str, Any]
) -> None:
    request = ChatRequest("m", (user("why?"),), thinking=request_thinking)
    built = build_kiro_request(request, model=OPUS_NATIVE, profile_arn=ARN, conversation_id=CONV, thinking=True)
    body = decode(built)
    assert fake_kiro_rejection(body) is None
    assert body["additionalModelRequestFields"] == expected
    assert current(body)["content"] == "why?"
    assert built.thinking is True


# --- size limit (§3.6) ---------------------------------------------------------------------------------


def test_body_over_the_limit_is_refused_with_advice() -> None:
    request = ChatRequest("m", (user("x" * 700_000),))
    with pytest.raises(ContextLengthExceeded) as info:
        build_kiro_request(request, model=SONNET, profile_arn=ARN, conversation_id=CONV)
    assert info.value.status == 400
    assert "too long for Kiro" in info.value.message
    assert "Compact or shorten" in info.value.message


def test_body_limit_is_exact_and_configurable() -> None:
    request = ChatRequest("m", (user("x" * 1_000),))
    size = len(build_kiro_request(request, model=SONNET, profile_arn=ARN, conversation_id=CONV).body)
    build_kiro_request(request, model=SONNET, profile_arn=ARN, conversation_id=CONV, max_body_bytes=size)
    with pytest.raises(ContextLengthExceeded):
        build_kiro_request(request, model=SONNET, profile_arn=ARN, conversation_id=CONV, max_body_bytes=size - 1)


# --- a Claude Code shaped conversation -----------------------------------------------------------------


def _claude_code_tools() -> tuple[ToolSpec, ...]:
    schema = {
        "type": "object",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "additionalProperties": False,
        "properties": {
            "file_path": {"type": "string", "description": "Absolute path"},
            "edits": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"old": {"type": "string"}, "new": {"type": "string"}},
                    "required": ["old", "new"],
                },
            },
        },
        "required": ["file_path"],
    }
    names = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "MultiEdit", "Write", "WebFetch", "TodoWrite"]
    specs = [ToolSpec(n, f"{n} tool. " + "Usage notes. " * 200, schema) for n in names]
    specs.append(ToolSpec("web_search", "server tool", {}))
    specs.append(ToolSpec("mcp__" + "playwright_browser_" * 4 + "take_screenshot", "", {"type": "object"}))
    return tuple(specs)


def _claude_code_messages() -> tuple[Message, ...]:
    reminder = "<system-reminder>\nAs you answer, use the context below.\n</system-reminder>"
    messages = [user(reminder, "Fix the failing test in tests/test_app.py")]
    for turn in range(12):
        messages.append(
            assistant(
                ThinkingPart(f"step {turn}"),
                f"Looking at step {turn}.",
                call(f"toolu_{turn}a", "Read", '{"file_path": "/repo/app.py"}'),
                call(f"toolu_{turn}b", "Grep", '{"pattern": "def "}'),
            )
        )
        messages.append(
            user(
                result(f"toolu_{turn}a", "line\n" * 50),
                result(f"toolu_{turn}b", "no matches", is_error=turn % 3 == 0),
                reminder,
            )
        )
    messages.append(assistant("All fixed."))
    messages.append(user("Thanks! Now run the tests."))
    return tuple(messages)


def test_claude_code_shaped_request_is_well_formed() -> None:
    built = build_request(*_claude_code_messages(), system="You are Claude Code. " * 500, tools=_claude_code_tools())
    body = decode(built)
    assert fake_kiro_rejection(body) is None
    assert len(history(body)) == 26
    assert [t["name"] for t in tools(body)][:10] == [
        "Task", "Bash", "Glob", "Grep", "Read", "Edit", "MultiEdit", "Write", "WebFetch", "TodoWrite"
    ]  # fmt: skip
    assert "web_search" not in [t["name"] for t in tools(body)]
    (long_sent,) = built.tool_names
    assert built.tool_names[long_sent].startswith("mcp__playwright")
    assert tools(body)[-1]["description"] == f"Tool: {long_sent}"
    assert history(body)[0]["userInputMessage"]["content"].startswith("You are Claude Code. ")
    uses = history(body)[1]["assistantResponseMessage"]["toolUses"]
    assert [u["toolUseId"] for u in uses] == ["toolu_0a", "toolu_0b"]
    statuses = [r["status"] for r in history(body)[2]["userInputMessage"]["userInputMessageContext"]["toolResults"]]
    assert statuses == ["success", "error"]
    assert current(body)["content"] == "Thanks! Now run the tests."


# --- the invariant, over arbitrary conversations -------------------------------------------------------

_ids = st.sampled_from(["t1", "t2", ""])
_texts = st.sampled_from(["", " ", "hi", "<system-reminder>r</system-reminder>"])
_user_parts = st.one_of(
    _texts.map(TextPart),
    st.builds(ToolResultPart, _ids, _texts, st.booleans()),
    st.just(ImagePart("image/png", PNG)),
)
_assistant_parts = st.one_of(
    _texts.map(TextPart),
    _texts.map(ThinkingPart),
    st.builds(ToolCallPart, _ids, st.sampled_from(["Read", "Bash", LONG_NAME]), st.sampled_from(["", "{}", "{bad"])),
)
_messages = st.lists(
    st.one_of(
        st.lists(_user_parts, max_size=4).map(lambda p: Message("user", tuple(p))),
        st.lists(_assistant_parts, max_size=4).map(lambda p: Message("assistant", tuple(p))),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=500, deadline=None)
@given(messages=_messages, with_tools=st.booleans(), choice=st.sampled_from([None, "none", "any"]))
def test_build_kiro_request_any_conversation_is_well_formed(
    messages: list[Message], with_tools: bool, choice: str | None
) -> None:
    request = ChatRequest(
        "m",
        tuple(messages),
        system="SYS",
        tools=(READ,) if with_tools else (),
        tool_choice=ToolChoice(choice) if choice else None,  # type: ignore[arg-type]
    )
    body = decode(build_kiro_request(request, model=SONNET, profile_arn=ARN, conversation_id=CONV))
    assert violations(body) == []
    assert fake_kiro_rejection(body) is None
    text = json.dumps(body)
    assert '"content":""' not in text.replace(" ", "") and '"toolUses":[]' not in text.replace(" ", "")

"""The fake's request checks for generateAssistantResponse: as strict as the real service, one rule each.

Every rule raises `Rejected` with the status and body the real service sends (kiro-protocol.md §8, §11);
`detail` says which rule fired so a failing test can tell why (the real service never says).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .accounts import Account, Accounts
from .catalog import MODEL_IDS, model_schema

IMPROPER: dict[str, Any] = {"message": "Improperly formed request.", "reason": None}
BODY_INVALID: dict[str, Any] = {"message": "Improperly formed request.", "reason": "REQUEST_BODY_INVALID"}
BAD_CONVERSATION_ID: dict[str, Any] = {"message": "Improperly formed request.", "reason": "INVALID_CONVERSATION_ID"}
BAD_BEARER: dict[str, Any] = {"message": "The bearer token included in the request is invalid.", "reason": None}
NO_PROFILE: dict[str, Any] = {"message": "profileArn is required for this request.", "reason": None}
INVALID_MODEL: dict[str, Any] = {
    "message": "Invalid model. Please select a different model to continue.",
    "reason": "INVALID_MODEL_ID",
}
TOO_LONG: dict[str, Any] = {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}

TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
AMZ_JSON = "application/x-amz-json-1.0"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ARN = re.compile(r"^arn:aws:codewhisperer:[a-z]{2}-[a-z]+-\d:\d{12}:profile/[A-Z0-9]{12}$")
# §1.4: "shared" ARNs some peers hard-code; they belong to nobody's account.
_PLACEHOLDER_ARNS = frozenset(
    {
        "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK",
        "arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX",
    }
)
IMAGE_FORMATS = frozenset({"jpeg", "png", "gif", "webp"})
MAX_TOOL_NAME = 64
MAX_TOOL_DESCRIPTION = 10_000


@dataclass(frozen=True)
class Limits:
    """Knobs a test may change: the body cap (§3.6), a context limit in characters (§8), the model page size."""

    max_body_bytes: int = 615_000
    context_chars: int | None = None
    models_page_size: int = 4


class Rejected(Exception):
    """A request the real service would refuse; `body` is exactly what it would answer."""

    def __init__(self, body: Mapping[str, Any], detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.status = status
        self.body = dict(body)
        self.detail = detail


@dataclass(frozen=True)
class ValidChat:
    account: Account
    body: dict[str, Any]


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(IMPROPER, f"{where} must be an object")
    return value


def _text(value: Any, where: str) -> str:
    # §3.4: Kiro rejects empty content; every peer substitutes a placeholder for it.
    if not isinstance(value, str) or value == "":
        raise Rejected(IMPROPER, f"{where} must be a non-empty string")
    return value


# ---- request envelope ----------------------------------------------------------------------------------


def check_bearer(headers: Mapping[str, str], accounts: Accounts) -> Account:
    """§3.2 / §8: a currently valid access token of a known account, else 403 bearer-invalid."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    account = accounts.by_access_token(token.strip()) if scheme == "Bearer" and token.strip() else None
    if account is None:
        raise Rejected(BAD_BEARER, "unknown or expired access token", status=403)
    # §2.3: every API call for an external-IdP token must say so, or the token is not recognised.
    if account.kind == "external_idp" and headers.get("tokentype") != "EXTERNAL_IDP":
        raise Rejected(BAD_BEARER, "external IdP token without TokenType: EXTERNAL_IDP", status=403)
    return account


AccessCheck = Callable[[Account, Mapping[str, str]], None]
ArnCheck = Callable[[dict[str, Any], Account], None]


def check_headers(headers: Mapping[str, str]) -> None:
    """§3.0 / §3.2: the runtime host's content type and target, a KiroIDE user agent, an invocation id."""
    if headers.get("content-type", "").split(";")[0].strip().lower() != AMZ_JSON:
        raise Rejected(IMPROPER, f"Content-Type must be {AMZ_JSON}")
    if headers.get("x-amz-target") != TARGET:
        raise Rejected(IMPROPER, f"x-amz-target must be {TARGET}")
    if "KiroIDE-" not in headers.get("user-agent", ""):
        raise Rejected(IMPROPER, "User-Agent must name KiroIDE-<version>-<machineId>")
    if not headers.get("amz-sdk-invocation-id"):
        raise Rejected(IMPROPER, "amz-sdk-invocation-id header missing")


def check_body_size(raw: bytes, limits: Limits) -> None:
    """§3.6: bodies past ~615 KB get the generic 400, not a context error."""
    if len(raw) > limits.max_body_bytes:
        raise Rejected(IMPROPER, f"body is {len(raw)} bytes, over {limits.max_body_bytes}")


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(IMPROPER, f"body is not JSON: {exc}") from exc
    return _obj(body, "body")


def check_profile_arn(body: dict[str, Any], account: Account) -> None:
    """§3.3: top-level profileArn is required on the runtime host; a placeholder or foreign one is invalid."""
    arn = body.get("profileArn")
    if not arn:
        raise Rejected(NO_PROFILE, "profileArn missing")
    if not isinstance(arn, str) or not _ARN.match(arn) or arn in _PLACEHOLDER_ARNS:
        raise Rejected(BODY_INVALID, f"profileArn {arn!r} is malformed or a placeholder")
    if arn != account.profile_arn:
        raise Rejected(BODY_INVALID, "profileArn belongs to another account")


# ---- conversation shape --------------------------------------------------------------------------------


def check_conversation(body: dict[str, Any]) -> dict[str, Any]:
    """§3.3: MANUAL trigger (§3.3 field notes) and a UUID conversationId (INVALID_CONVERSATION_ID, §8)."""
    state = _obj(body.get("conversationState"), "conversationState")
    if state.get("chatTriggerType") != "MANUAL":
        raise Rejected(IMPROPER, "chatTriggerType must be MANUAL")
    conversation_id = state.get("conversationId")
    if not isinstance(conversation_id, str) or not _UUID.match(conversation_id):
        raise Rejected(BAD_CONVERSATION_ID, "conversationId must be a UUID")
    return state


def check_model_id(model_id: Any, where: str) -> None:
    """§3.0 / §4.1: only dot-format ids from the model list; legacy CLAUDE_..._V1_0 enums are refused."""
    if not isinstance(model_id, str) or model_id not in MODEL_IDS:
        raise Rejected(INVALID_MODEL, f"{where}.modelId {model_id!r} is not in the model list")


def check_user_message(value: Any, where: str, *, current: bool) -> dict[str, Any]:
    """§3.3: non-empty content, a model id, origin AI_EDITOR; images sit directly under the message."""
    message = _obj(value, where)
    _text(message.get("content"), f"{where}.content")
    if "modelId" not in message:
        raise Rejected(IMPROPER, f"{where}.modelId missing (it is repeated on every user message)")
    check_model_id(message["modelId"], where)
    if current or "origin" in message:
        if message.get("origin") != "AI_EDITOR":
            raise Rejected(IMPROPER, f"{where}.origin must be AI_EDITOR")
    context = _obj(message.get("userInputMessageContext", {}), f"{where}.userInputMessageContext")
    if "images" in context:
        raise Rejected(IMPROPER, f"{where}: images belong under userInputMessage, not its context")
    if "images" in message:
        check_images(message["images"], where)
    results = context.get("toolResults", [])
    if not isinstance(results, list):
        raise Rejected(IMPROPER, f"{where}.toolResults must be a list")
    for i, result in enumerate(results):
        check_tool_result(result, f"{where}.toolResults[{i}]")
    return message


def check_assistant_message(value: Any, where: str) -> dict[str, Any]:
    """§3.3 / §3.4: non-empty content; toolUses omitted rather than []; inputs are objects without "" keys."""
    message = _obj(value, where)
    _text(message.get("content"), f"{where}.content")
    if "toolUses" in message:
        uses = message["toolUses"]
        if not isinstance(uses, list) or not uses:
            raise Rejected(IMPROPER, f"{where}.toolUses must be a non-empty list (omit it instead of [])")
        for i, use in enumerate(uses):
            use = _obj(use, f"{where}.toolUses[{i}]")
            _text(use.get("toolUseId"), f"{where}.toolUses[{i}].toolUseId")
            _text(use.get("name"), f"{where}.toolUses[{i}].name")
            tool_input = _obj(use.get("input"), f"{where}.toolUses[{i}].input")
            if _has_empty_key(tool_input):
                raise Rejected(IMPROPER, f"{where}.toolUses[{i}].input has an empty-string key")
    return message


def _has_empty_key(value: Any) -> bool:
    # §3.3: AIC strips {"": ...} because Kiro rejects it.
    if isinstance(value, dict):
        return "" in value or any(_has_empty_key(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_empty_key(v) for v in value)
    return False


def check_tool_result(result: Any, where: str) -> None:
    """§3.3: status success|error (lower case); content a non-empty list of {text} (JW fills "(empty result)")."""
    result = _obj(result, where)
    _text(result.get("toolUseId"), f"{where}.toolUseId")
    if result.get("status") not in ("success", "error"):
        raise Rejected(IMPROPER, f"{where}.status must be success or error")
    content = result.get("content")
    if not isinstance(content, list) or not content:
        raise Rejected(IMPROPER, f"{where}.content must be a non-empty list of {{text}}")
    for i, block in enumerate(content):
        block = _obj(block, f"{where}.content[{i}]")
        if set(block) != {"text"}:
            raise Rejected(IMPROPER, f"{where}.content[{i}] must be exactly {{text}}")
        _text(block["text"], f"{where}.content[{i}].text")


def check_images(images: Any, where: str) -> None:
    """§3.3: [{format: jpeg|png|gif|webp, source: {bytes: plain base64}}]."""
    if not isinstance(images, list) or not images:
        raise Rejected(IMPROPER, f"{where}.images must be a non-empty list")
    for i, image in enumerate(images):
        image = _obj(image, f"{where}.images[{i}]")
        if image.get("format") not in IMAGE_FORMATS:
            raise Rejected(IMPROPER, f"{where}.images[{i}].format {image.get('format')!r} is not a MIME subtype")
        source = _obj(image.get("source"), f"{where}.images[{i}].source")
        data = source.get("bytes")
        try:
            if not isinstance(data, str) or not base64.b64decode(data, validate=True):
                raise ValueError("empty")
        except (binascii.Error, ValueError) as exc:
            raise Rejected(IMPROPER, f"{where}.images[{i}].source.bytes is not plain base64") from exc


def check_history(state: dict[str, Any]) -> list[dict[str, Any]]:
    """§3.4: strict user/assistant alternation starting with a user turn; the current message is the next user."""
    history = state.get("history", [])
    if not isinstance(history, list):
        raise Rejected(IMPROPER, "history must be a list")
    for i, item in enumerate(history):
        item = _obj(item, f"history[{i}]")
        expected = "userInputMessage" if i % 2 == 0 else "assistantResponseMessage"
        if list(item) != [expected]:
            raise Rejected(IMPROPER, f"history[{i}] must be exactly {{{expected}}} (turns must alternate)")
        if i % 2 == 0:
            check_user_message(item[expected], f"history[{i}].userInputMessage", current=False)
        else:
            check_assistant_message(item[expected], f"history[{i}].assistantResponseMessage")
    if len(history) % 2:
        raise Rejected(IMPROPER, "history ends with a user turn, so two user turns meet the current message")
    return history


def check_current(state: dict[str, Any]) -> dict[str, Any]:
    current = _obj(state.get("currentMessage"), "currentMessage")
    if list(current) != ["userInputMessage"]:
        raise Rejected(IMPROPER, "currentMessage must be exactly {userInputMessage}")
    return check_user_message(current["userInputMessage"], "currentMessage.userInputMessage", current=True)


# ---- tools ---------------------------------------------------------------------------------------------


def _schema_problem(schema: Any) -> str | None:
    # §3.5: JW strips both recursively because each one triggers a 400.
    if isinstance(schema, dict):
        if "additionalProperties" in schema:
            return "additionalProperties"
        if schema.get("required") == []:
            return "empty required"
        return next((p for p in map(_schema_problem, schema.values()) if p), None)
    if isinstance(schema, list):
        return next((p for p in map(_schema_problem, schema) if p), None)
    return None


def check_tools(current: dict[str, Any]) -> set[str]:
    """§3.5: names 1-64 chars, descriptions 1-10,000 chars, schemas without additionalProperties or required: [].

    Returns the declared names, lower-cased (Kiro matches names case-insensitively, §3.4).
    """
    context = current.get("userInputMessageContext", {})
    tools = context.get("tools", [])
    if not isinstance(tools, list):
        raise Rejected(IMPROPER, "tools must be a list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}].toolSpecification"
        spec = _obj(_obj(tool, f"tools[{i}]").get("toolSpecification"), where)
        name = _text(spec.get("name"), f"{where}.name")
        if len(name) > MAX_TOOL_NAME:
            raise Rejected(IMPROPER, f"{where}.name is {len(name)} chars, over {MAX_TOOL_NAME}")
        description = _text(spec.get("description"), f"{where}.description")
        if len(description) > MAX_TOOL_DESCRIPTION:
            raise Rejected(IMPROPER, f"{where}.description is {len(description)} chars, over {MAX_TOOL_DESCRIPTION}")
        schema = _obj(_obj(spec.get("inputSchema"), f"{where}.inputSchema").get("json"), f"{where}.inputSchema.json")
        problem = _schema_problem(schema)
        if problem:
            raise Rejected(IMPROPER, f"{where}.inputSchema has {problem}")
        if name.lower() in names:
            raise Rejected(IMPROPER, f"tool {name!r} declared twice")
        names.add(name.lower())
    return names


def check_tool_pairing(history: list[dict[str, Any]], current: dict[str, Any], declared: set[str]) -> None:
    """§3.4 / §8 (TOOL_USE_RESULT_MISMATCH): each user turn answers exactly the tool uses of the turn before it,
    and every tool used in history is declared in the current message's tools (case-insensitive)."""
    turns = [*history, {"userInputMessage": current}]
    for i, turn in enumerate(turns):
        if "userInputMessage" not in turn:
            for use in turn["assistantResponseMessage"].get("toolUses", []):
                if use["name"].lower() not in declared:
                    raise Rejected(IMPROPER, f"history[{i}] uses tool {use['name']!r} not declared in tools")
            continue
        results = turn["userInputMessage"].get("userInputMessageContext", {}).get("toolResults", [])
        answered = [r["toolUseId"] for r in results]
        before = turns[i - 1]["assistantResponseMessage"] if i else {}
        asked = [u["toolUseId"] for u in before.get("toolUses", [])]
        if len(set(answered)) != len(answered) or len(set(asked)) != len(asked):
            raise Rejected(IMPROPER, f"turn {i}: duplicate toolUseId")
        if set(answered) != set(asked):
            raise Rejected(IMPROPER, f"turn {i}: toolResults {sorted(answered)} do not answer toolUses {sorted(asked)}")


# ---- model extras and size -----------------------------------------------------------------------------


def _schema_mismatch(value: Any, schema: dict[str, Any], where: str) -> str | None:
    expected = schema.get("type")
    if expected == "object":
        if not isinstance(value, dict):
            return f"{where} must be an object"
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key not in properties:
                return f"{where}.{key} is not allowed"
            problem = _schema_mismatch(item, properties[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if expected == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return f"{where} must be an integer"
    if expected == "string" and not isinstance(value, str):
        return f"{where} must be a string"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {schema['enum']}"
    if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"]:
        return f"{where} out of range"
    return None


def check_model_fields(body: dict[str, Any], current: dict[str, Any]) -> None:
    """§10.2: additionalModelRequestFields only for models that advertise a schema, and only what it allows."""
    if "additionalModelRequestFields" not in body:
        return
    schema = model_schema(current["modelId"])
    if schema is None:
        raise Rejected(IMPROPER, f"{current['modelId']} takes no additionalModelRequestFields")
    problem = _schema_mismatch(body["additionalModelRequestFields"], schema, "additionalModelRequestFields")
    if problem:
        raise Rejected(IMPROPER, problem)


def context_chars(history: list[dict[str, Any]], current: dict[str, Any]) -> int:
    """What counts toward the context limit: every text the model reads, tool specs included."""
    total = 0
    for turn in [*history, {"userInputMessage": current}]:
        message = turn.get("userInputMessage") or turn["assistantResponseMessage"]
        total += len(message["content"])
        context = message.get("userInputMessageContext", {})
        total += sum(len(b["text"]) for r in context.get("toolResults", []) for b in r["content"])
        total += sum(len(json.dumps(t, ensure_ascii=False)) for t in context.get("tools", []))
        total += sum(len(json.dumps(u["input"], ensure_ascii=False)) for u in message.get("toolUses", []))
    return total


def check_context_length(history: list[dict[str, Any]], current: dict[str, Any], limits: Limits) -> None:
    """§8: context overflow is its own 400, CONTENT_LENGTH_EXCEEDS_THRESHOLD."""
    if limits.context_chars is None:
        return
    size = context_chars(history, current)
    if size > limits.context_chars:
        raise Rejected(TOO_LONG, f"context is {size} chars, over {limits.context_chars}")


def validate_chat(
    headers: Mapping[str, str],
    raw: bytes,
    accounts: Accounts,
    limits: Limits,
    *,
    access: AccessCheck | None = None,
    arn_check: ArnCheck = check_profile_arn,
    body_check: Callable[[dict[str, Any]], None] | None = None,
) -> ValidChat:
    """Run every rule in the order the service would hit them: auth, headers, size, JSON, shape, content.

    `access` says whether this host takes this login at all, `arn_check` which profileArn it wants
    (host_rules.py: they differ between the runtime host and the AWS surface, 2026 §1.1).
    """
    scheme, _, token = headers.get("authorization", "").partition(" ")
    account = accounts.by_access_token(token.strip()) if scheme == "Bearer" and token.strip() else None
    if account is None:
        raise Rejected(BAD_BEARER, "unknown or expired access token", status=403)
    if access is not None:
        access(account, headers)
    else:
        check_bearer(headers, accounts)
    check_headers(headers)
    check_body_size(raw, limits)
    body = parse_body(raw)
    if body_check is not None:
        body_check(body)
    arn_check(body, account)
    state = check_conversation(body)
    history = check_history(state)
    current = check_current(state)
    if account.models is not None and current["modelId"] not in account.models:
        # 2026 §1.4: the catalog is per account; a model outside it is refused like an unknown one.
        raise Rejected(INVALID_MODEL, f"{current['modelId']} is not in this account's catalog")
    check_model_fields(body, current)
    declared = check_tools(current)
    check_tool_pairing(history, current, declared)
    check_context_length(history, current, limits)
    return ValidChat(account, body)

"""Which Kiro host accepts which kind of login, and what it answers otherwise (kiro-protocol-2026.md §1-§4, §7).

Written from the protocol documents, not from ki2api: each rule cites the row it comes from. Where the
sources disagree the fake follows one side and a `HostRules` knob switches to the other, so a test can
show that ki2api copes with both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .accounts import BUILDER_ID_PLACEHOLDER_ARN, Account
from .validation import BAD_BEARER, IMPROPER, NO_PROFILE, Rejected

NOT_AUTHORIZED: dict[str, Any] = {
    "__type": "com.amazon.aws.codewhisperer#AccessDeniedException",
    "message": "User is not authorized to make this call.",
    "reason": None,
}
INVALID_PROFILE_ARN: dict[str, Any] = {
    "__type": "com.amazon.aws.codewhisperer#ValidationException",
    "message": "Invalid profileArn.",
    "reason": None,
}
BUILDER_ID_UNSUPPORTED: dict[str, Any] = {"message": "AWS Builder ID is not supported for this operation."}
FEATURE_NOT_AUTHORIZED: dict[str, Any] = {"message": "User is not authorized to access this feature"}
SUSPENDED: dict[str, Any] = {
    "__type": "com.amazon.aws.codewhisperer#AccessDeniedException",
    "message": (
        "Your User ID (d-9067example.fake-user) temporarily is suspended. We've locked your account as a security "
        "precaution. To restore access, please contact our support team to verify your identity: "
        "https://support.example.com/kiro"
    ),
    "reason": None,
}
SUSPICIOUS: dict[str, Any] = {
    "message": (
        "Due to suspicious activity, we are imposing temporary limits on how frequently your account "
        "(d-9067example) can send a request to Kiro while we investigate."
    ),
    "reason": None,
}
QUOTA_BODIES: dict[str, dict[str, Any]] = {
    "MONTHLY_REQUEST_COUNT": {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"},
    "OVERAGE_REQUEST_LIMIT_EXCEEDED": {
        "message": "You have reached the limit for overages.",
        "reason": "OVERAGE_REQUEST_LIMIT_EXCEEDED",
    },
}
# 2026 §1.1 late-2026 warning: runtime answered valid bodies with this (NR #3774; OR #15621).
RUNTIME_BODY_INVALID: dict[str, Any] = {"message": "Improperly formed request.", "reason": "REQUEST_BODY_INVALID"}
# 2026 §8 / VR #104: only these top-level fields exist; `systemPrompt`, `agentMode` give a 400.
TOP_LEVEL_FIELDS = frozenset({"conversationState", "profileArn", "additionalModelRequestFields"})

Host = Literal["runtime", "q"]


@dataclass
class HostRules:
    """Knobs for the disputed rows of 2026 §9; a test flips one to play the other side."""

    # §9.3 / §2.4: what q wants for a Builder ID: "omit" (OR #13192, JW #186: no ARN; the placeholder gets
    # 403, KRS-Z 0.6.1) or "placeholder" (KRS-Z 0.6.2: without it `400 profileArn is required`).
    builder_id_arn: Literal["omit", "placeholder"] = "omit"
    # §9.2: runtime refuses every path-style chat with REQUEST_BODY_INVALID (NR #3776) when True.
    runtime_body_invalid: bool = False


def token_type(headers: Mapping[str, str]) -> str:
    """The token-type header; peers spell it TokenType, tokentype or tokenType (§1.1), headers are case-blind."""
    return headers.get("tokentype", "")


def account_signals(account: Account) -> None:
    """§7: a suspended, used-up or throttled account gets the same answer on every host and operation."""
    if account.suspended:
        raise Rejected(SUSPENDED, "account suspended", status=403)
    if account.quota_reason:
        raise Rejected(QUOTA_BODIES[account.quota_reason], "quota exhausted", status=402)
    if account.suspicious:
        raise Rejected(SUSPICIOUS, "suspicious-activity throttle", status=429)


def runtime_accepts(account: Account, headers: Mapping[str, str], rules: HostRules) -> None:
    """§1.1 runtime column: social only. IdC, external IdP and API keys get 403 bearer-invalid; a Builder ID
    has no ARN to give and gets `400 profileArn is required` (or the generic 400 for any ARN it invents)."""
    if account.kind in ("idc", "external_idp", "api_key") and not account.builder_id:
        raise Rejected(BAD_BEARER, f"runtime refuses {account.kind} bearers (2026 §1.1)", status=403)
    if account.kind == "external_idp" and token_type(headers) != "EXTERNAL_IDP":
        raise Rejected(BAD_BEARER, "external IdP token without TokenType", status=403)
    if rules.runtime_body_invalid:
        raise Rejected(RUNTIME_BODY_INVALID, "runtime path-style chat deprecated (knob)")


def q_bearer(account: Account, headers: Mapping[str, str]) -> None:
    """§1.1 q column: external IdP needs `TokenType: EXTERNAL_IDP` (else bearer-invalid, §4); a key needs
    `tokentype: API_KEY` (else AccessDenied, §3); social, IdC and Builder ID send no such header."""
    kind = token_type(headers)
    if account.kind == "external_idp" and kind != "EXTERNAL_IDP":
        raise Rejected(BAD_BEARER, "external IdP token without TokenType: EXTERNAL_IDP", status=403)
    if account.kind == "api_key" and kind != "API_KEY":
        raise Rejected(NOT_AUTHORIZED, "API key without tokentype: API_KEY", status=403)
    if account.kind in ("social", "idc") and kind:
        raise Rejected(BAD_BEARER, f"token-type header {kind!r} sent for a {account.kind} login", status=403)


def q_profile_arn(arn: Any, account: Account, region: str, rules: HostRules) -> None:
    """§1.2, §2.3, §2.4, §3: the ARN each kind must (not) send to `q.{region}`."""
    if account.kind == "api_key":
        if arn:
            raise Rejected(INVALID_PROFILE_ARN, "profileArn sent with an API key (2026 §3)")
        return
    if account.builder_id:
        if rules.builder_id_arn == "omit":
            if arn:
                raise Rejected(NOT_AUTHORIZED, "Builder ID sent an ARN (KRS-Z 0.6.1)", status=403)
        elif arn != BUILDER_ID_PLACEHOLDER_ARN:
            raise Rejected(NO_PROFILE, "Builder ID without the placeholder ARN (KRS-Z 0.6.2)")
        return
    if not arn:
        raise Rejected(NOT_AUTHORIZED, "no profileArn (2026 §2.3: looks like an account problem)", status=403)
    if arn == BUILDER_ID_PLACEHOLDER_ARN:
        raise Rejected(BAD_BEARER, "Builder ID placeholder ARN for a real account (KAM PR #113)", status=403)
    if arn != account.profile_arn:
        raise Rejected(NOT_AUTHORIZED, "profileArn of another profile", status=403)
    if account.profile_region != region:
        if region == "us-east-1":
            raise Rejected(IMPROPER, f"{account.profile_region} ARN sent to the us-east-1 host (OR PR #3631)")
        raise Rejected(NOT_AUTHORIZED, f"profile lives in {account.profile_region}, not {region}", status=403)


def top_level_fields(body: Mapping[str, Any]) -> None:
    unknown = sorted(set(body) - TOP_LEVEL_FIELDS)
    if unknown:
        raise Rejected(IMPROPER, f"unknown top-level field(s) {unknown} (VR PR #104)")

"""What the fake Kiro's control plane answers: the model list, usage limits and profiles.

Shapes follow kiro-protocol.md §4.3 (ListAvailableModels / ListAvailableProfiles) and §7 (getUsageLimits).
The model list is also the set of model ids the chat endpoint accepts (§3.0: dot-format ids only).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from .accounts import Account

# §10.2: only the newest models accept `additionalModelRequestFields`; the schema says which fields and values.
ADAPTIVE_THINKING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "thinking": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["adaptive", "disabled"]},
                "display": {"type": "string", "enum": ["summarized", "omitted"]},
            },
        },
        "output_config": {
            "type": "object",
            "properties": {"effort": {"type": "string", "enum": ["low", "medium", "high", "max"]}},
        },
        "max_tokens": {"type": "integer", "minimum": 1024, "maximum": 64000},
    },
}


def _model(
    model_id: str,
    name: str,
    rate: float,
    max_input: int = 200_000,
    max_output: int = 64_000,
    images: bool = True,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model: dict[str, Any] = {
        "modelId": model_id,
        "modelName": name,
        "description": f"{name} (fake Kiro)",
        "rateMultiplier": rate,
        "rateUnit": "Credit",
        "supportedInputTypes": ["TEXT", "IMAGE"] if images else ["TEXT"],
        "promptCaching": {
            "supportsPromptCaching": True,
            "maximumCacheCheckpointsPerRequest": 4,
            "minimumTokensPerCacheCheckpoint": 1024,
        },
        "tokenLimits": {"maxInputTokens": max_input, "maxOutputTokens": max_output},
    }
    if schema is not None:
        model["additionalModelRequestFieldsSchema"] = schema
    return model


MODELS: tuple[dict[str, Any], ...] = (
    _model("auto", "Auto", 1.0),
    _model("claude-sonnet-4", "Claude Sonnet 4", 1.3),
    _model("claude-sonnet-4.5", "Claude Sonnet 4.5", 1.3),
    _model("claude-haiku-4.5", "Claude Haiku 4.5", 0.4, max_output=8192),
    _model("claude-opus-4.5", "Claude Opus 4.5", 2.2),
    _model("claude-sonnet-4.6", "Claude Sonnet 4.6", 1.3, max_input=1_000_000, schema=ADAPTIVE_THINKING_SCHEMA),
    _model("claude-opus-4.6", "Claude Opus 4.6", 2.2, max_input=1_000_000, schema=ADAPTIVE_THINKING_SCHEMA),
)

MODEL_IDS: frozenset[str] = frozenset(m["modelId"] for m in MODELS)


def model_schema(model_id: str) -> dict[str, Any] | None:
    """The `additionalModelRequestFieldsSchema` of a model, or None when it takes no extra fields."""
    for model in MODELS:
        if model["modelId"] == model_id:
            schema = model.get("additionalModelRequestFieldsSchema")
            return schema if isinstance(schema, dict) else None
    return None


def models_page(
    next_token: str | None, page_size: int, offered: tuple[str, ...] | None = None
) -> dict[str, Any] | None:
    """One page of the model list; `nextToken` is an opaque "page-N" string. None for an unknown token.

    `offered` narrows the list to one account's catalog (2026 §1.4: ListAvailableModels is per account).
    """
    models = [m for m in MODELS if offered is None or m["modelId"] in offered]
    start = 0
    if next_token:
        if not next_token.startswith("page-") or not next_token[5:].isdigit():
            return None
        start = int(next_token[5:])
        if start <= 0 or start >= len(models):
            return None
    end = start + page_size
    body: dict[str, Any] = {"models": list(models[start:end])}
    if end < len(models):
        body["nextToken"] = f"page-{end}"
    return body


def _next_month_reset(now: dt.datetime) -> float:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


def usage_limits(account: Account, with_email: bool, now: dt.datetime | None = None) -> dict[str, Any]:
    """A §7 getUsageLimits body built from the account's quota fields (limits and usage are floats)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    reset = _next_month_reset(now)
    trial_expiry = float(calendar.timegm((now + dt.timedelta(days=10)).timetuple()))
    breakdown = {
        "resourceType": "CREDIT",
        "displayName": "Credit",
        "displayNamePlural": "Credits",
        "unit": "INVOCATIONS",
        "currency": "USD",
        "currentUsage": int(account.current_usage),
        "currentUsageWithPrecision": account.current_usage,
        "usageLimit": int(account.usage_limit),
        "usageLimitWithPrecision": account.usage_limit,
        "overageCap": 0,
        "overageRate": 0.04,
        "overageCharges": 0.0,
        "currentOverages": 0,
        "nextDateReset": reset,
        "freeTrialInfo": {
            "freeTrialStatus": account.trial_status,
            "freeTrialExpiry": trial_expiry,
            "usageLimit": int(account.trial_limit),
            "usageLimitWithPrecision": account.trial_limit,
            "currentUsage": int(account.trial_usage),
            "currentUsageWithPrecision": account.trial_usage,
        },
        "bonuses": [],
    }
    body: dict[str, Any] = {
        "subscriptionInfo": {
            "subscriptionTitle": account.subscription_title,
            "type": "Q_DEVELOPER_STANDALONE_FREE",
            "overageCapability": "OVERAGE_INCAPABLE",
            "upgradeCapability": "UPGRADE_CAPABLE",
            "subscriptionManagementTarget": "PURCHASE",
        },
        "usageBreakdownList": [breakdown],
        "nextDateReset": reset,
        "daysUntilReset": max(0, int((reset - now.timestamp()) // 86400)),
        "overageConfiguration": {"overageStatus": "DISABLED"},
        "limits": [],
    }
    if with_email:
        body["userInfo"] = {"email": account.email, "userId": account.user_id}
    return body


def profiles(account: Account) -> dict[str, Any]:
    """ListAvailableProfiles (§4.3): the one profile this account may use (none for a Builder ID or a key)."""
    if not account.profile_arn:
        return {"profiles": []}
    region = account.profile_region
    return {
        "profiles": [
            {
                "arn": account.profile_arn,
                "profileName": "KiroProfile-" + region,
                "identityDetails": {"ssoIdentityDetails": {"ssoRegion": account.region}},
            }
        ]
    }

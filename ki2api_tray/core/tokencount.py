"""Offline token estimates: no network, no tokenizer download.

Claude's tokenizer is not public, so we weigh characters the way kiro.rs does (ASCII and Latin
about 4 characters per token, CJK and other scripts about 1), and scale short texts up a little
because short strings tokenise worse. Good to within ~20% on English prose and code, which is
what clients use usage numbers for (budgeting and compaction), not billing.
"""

from __future__ import annotations

import json

from .model import ChatRequest, ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart

# Per-message framing the model sees (role markers and separators).
_MESSAGE_OVERHEAD = 4
# Anthropic documents roughly (width*height)/750 tokens per image; without decoding we assume a
# typical screenshot-sized image.
_IMAGE_TOKENS = 1_600


def estimate_tokens(text: str) -> int:
    return tokens_for_weight(text_weight(text)) if text else 0


def text_weight(text: str) -> int:
    """The additive part of the estimate: 1 per ASCII/Latin character, 4 per other character.

    Kept apart so a running count (the max_tokens limit) can add deltas without re-reading the answer.
    """
    if text.isascii():  # the common case, and much faster than looking at each character
        return len(text)
    return sum(1 if ord(ch) < 0x0250 else 4 for ch in text)


def tokens_for_weight(weight: int) -> int:
    """Tokens for a text of this weight; 0 only for an empty text."""
    if weight <= 0:
        return 0
    tokens = weight / 4
    if tokens < 100:
        tokens *= 1.5
    elif tokens < 200:
        tokens *= 1.3
    elif tokens < 300:
        tokens *= 1.25
    elif tokens < 800:
        tokens *= 1.2
    return max(1, round(tokens))


def estimate_request_tokens(request: ChatRequest) -> int:
    """Input tokens of a whole request: system, messages, tool definitions."""
    total = estimate_tokens(request.system)
    for message in request.messages:
        total += _MESSAGE_OVERHEAD
        for part in message.parts:
            if isinstance(part, TextPart):
                total += estimate_tokens(part.text)
            elif isinstance(part, ThinkingPart):
                total += estimate_tokens(part.text)
            elif isinstance(part, ToolCallPart):
                total += estimate_tokens(part.name) + estimate_tokens(part.arguments)
            elif isinstance(part, ToolResultPart):
                total += estimate_tokens(part.content)
            elif isinstance(part, ImagePart):
                total += _IMAGE_TOKENS
    for tool in request.tools:
        total += estimate_tokens(tool.name) + estimate_tokens(tool.description)
        total += estimate_tokens(json.dumps(tool.parameters, separators=(",", ":")))
    return total

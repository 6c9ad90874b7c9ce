"""The Anthropic Messages protocol <-> the neutral model: the one import the server needs.

Requests are read in `anthropic_request`, responses (stream events, whole messages, errors) are
written in `anthropic_response`; this module only gathers their public names.
"""

from __future__ import annotations

from .anthropic_request import anthropic_count_tokens, anthropic_to_chat
from .anthropic_response import (
    THINKING_SIGNATURE,
    AnthropicStreamEncoder,
    SseEvent,
    anthropic_error_body,
    anthropic_message,
)

__all__ = [
    "THINKING_SIGNATURE",
    "AnthropicStreamEncoder",
    "SseEvent",
    "anthropic_count_tokens",
    "anthropic_error_body",
    "anthropic_message",
    "anthropic_to_chat",
]

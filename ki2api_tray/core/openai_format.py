"""The OpenAI Chat Completions protocol in both directions; what the server imports.

Requests are read in `openai_request`, responses written in `openai_response`; this module only
names the public surface so callers need not know where the line between them falls.
"""

from __future__ import annotations

from .openai_request import openai_include_usage, openai_to_chat
from .openai_response import OpenAIStreamEncoder, openai_completion, openai_error_body, openai_model_list

__all__ = [
    "OpenAIStreamEncoder",
    "openai_completion",
    "openai_error_body",
    "openai_include_usage",
    "openai_model_list",
    "openai_to_chat",
]

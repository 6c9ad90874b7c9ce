"""ki2api: use a Kiro login from any OpenAI or Anthropic client."""

__version__ = "0.1.0"

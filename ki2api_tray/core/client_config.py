"""One-click client set-up, the pure half: what Claude Code's and Codex's files become, and snippets for the rest.

A `Plan` is what a file would become: its path, the text before and after, and a unified diff to show first.
`plan_claude_code` merges an `env` block into `~/.claude/settings.json`; `plan_codex` adds a `ki2api` provider
to `~/.codex/config.toml` and selects it. Everything else the person has in those files is kept. Reading,
writing, backups and undo are the service's (service.py), so the tray reaches them through it.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIENTS = ("claude-code", "codex")
PROVIDER = "ki2api"
_TABLE = re.compile(r"^\s*\[")
_PROVIDER_TABLE = re.compile(r"^\s*\[\s*model_providers\s*\.\s*(?:ki2api|\"ki2api\")\s*\]\s*(?:#.*)?$")


@dataclass(frozen=True)
class Plan:
    """What `apply` would write. `before` is None when the file does not exist yet."""

    client: str
    path: Path
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def diff(self) -> str:
        lines = difflib.unified_diff(
            (self.before or "").splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=f"{self.path} (now)" if self.before is not None else "/dev/null",
            tofile=f"{self.path} (with ki2api)",
        )
        return "".join(lines) or "(no change: the file already points at ki2api)\n"


class SetupError(Exception):
    """A file ki2api will not rewrite (it could not read it as JSON or TOML); the message says which and why."""


# --- Claude Code -------------------------------------------------------------------------------------


def claude_code_env(base_url: str, api_key: str, model: str, small_model: str) -> dict[str, str]:
    """The `env` entries Claude Code reads (its settings.json documents each of these names)."""
    return {
        "ANTHROPIC_BASE_URL": base_url.removesuffix("/v1"),
        "ANTHROPIC_AUTH_TOKEN": api_key,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": small_model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def plan_claude_code(
    path: Path,
    before: str | None,
    base_url: str,
    api_key: str,
    *,
    model: str = "claude-sonnet-4.5",
    small_model: str = "claude-haiku-4.5",
) -> Plan:
    try:
        settings: Any = json.loads(before) if before and before.strip() else {}
    except ValueError as exc:
        raise SetupError(f"{path} is not valid JSON ({exc}); fix or move it, then try again.") from None
    if not isinstance(settings, dict):
        raise SetupError(f"{path} does not hold a JSON object; fix or move it, then try again.")
    env = settings.get("env")
    if env is not None and not isinstance(env, dict):
        raise SetupError(f'{path}: "env" is not an object; fix it, then try again.')
    merged = {**(env or {}), **claude_code_env(base_url, api_key, model, small_model)}
    # An API key in the file would override the token ki2api checks; Claude Code would then ask to log in.
    merged.pop("ANTHROPIC_API_KEY", None)
    after = json.dumps({**settings, "env": merged}, indent=2, ensure_ascii=False) + "\n"
    return Plan("claude-code", path, before, after)


# --- Codex -------------------------------------------------------------------------------------------


def codex_provider(base_url: str, api_key: str) -> str:
    """The provider table: Codex's custom providers speak the Responses API; the key goes as a header."""
    return (
        f"[model_providers.{PROVIDER}]\n"
        'name = "ki2api (Kiro)"\n'
        f"base_url = {json.dumps(base_url)}\n"
        'wire_api = "responses"\n'
        f"http_headers = {{ Authorization = {json.dumps('Bearer ' + api_key)} }}\n"
    )


def plan_codex(
    path: Path, before: str | None, base_url: str, api_key: str, *, model: str = "claude-sonnet-4.5"
) -> Plan:
    """A line-level merge (the standard library cannot write TOML); the service checks both texts parse."""
    text = before or ""
    lines = text.splitlines()
    head: list[str] = []  # top-level keys come before the first table
    rest: list[str] = []
    for line in lines:
        (rest if rest or _TABLE.match(line) else head).append(line)
    head = [line for line in head if not re.match(r"^\s*(model|model_provider)\s*=", line)]
    while head and not head[-1].strip():
        head.pop()
    kept: list[str] = []
    skipping = False
    for line in rest:
        if _TABLE.match(line):
            skipping = bool(_PROVIDER_TABLE.match(line))
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    top = [f"model = {json.dumps(model)}", f'model_provider = "{PROVIDER}"']
    parts = ["\n".join([*head, *top]), *(["\n".join(kept)] if kept else []), codex_provider(base_url, api_key).rstrip()]
    after = "\n\n".join(parts) + "\n"
    return Plan("codex", path, before, after)


CLIENT_FILES = {"claude-code": (".claude", "settings.json"), "codex": (".codex", "config.toml")}


def plan_for(client: str, path: Path, before: str | None, base_url: str, api_key: str) -> Plan:
    if client == "claude-code":
        return plan_claude_code(path, before, base_url, api_key)
    if client == "codex":
        return plan_codex(path, before, base_url, api_key)
    raise ValueError(f"unknown client {client!r}; expected one of {', '.join(CLIENTS)}")


# --- snippets for clients ki2api does not configure itself -------------------------------------------


def snippets(base_url: str, api_key: str, model: str = "claude-sonnet-4.5") -> dict[str, str]:
    """Copy-ready settings for other clients, by client name (the README explains each)."""
    root = base_url.removesuffix("/v1")
    return {
        "Cline": f"API Provider: OpenAI Compatible\nBase URL: {base_url}\nAPI Key: {api_key}\nModel ID: {model}",
        "Continue": (
            "models:\n  - name: Claude via Kiro\n    provider: openai\n"
            f"    model: {model}\n    apiBase: {base_url}\n    apiKey: {api_key}"
        ),
        "Cursor": f"OpenAI API Key: {api_key}\nOverride OpenAI Base URL: {base_url}\nModel: {model}",
        "Cherry Studio": f"Provider type: OpenAI\nAPI address: {root}\nAPI key: {api_key}\nModel: {model}",
        "Open WebUI": f"Admin Settings > Connections > OpenAI API\nURL: {base_url}\nKey: {api_key}",
        "LangChain": (
            "from langchain_openai import ChatOpenAI\n"
            f'llm = ChatOpenAI(base_url="{base_url}", api_key="{api_key}", model="{model}")'
        ),
        "curl": (
            f"curl {base_url}/chat/completions \\\n"
            f'  -H "Authorization: Bearer {api_key}" -H "Content-Type: application/json" \\\n'
            f'  -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello"}}]}}\''
        ),
    }

"""The real Codex CLI (`codex exec`), its custom provider speaking the Responses API, through ki2api to the fake Kiro.

Install it with `npm install --prefix build/codex @openai/codex@0.171.0` (build/ is git-ignored; .ci/run does
it). Codex reads its provider from `$CODEX_HOME/config.toml`; each test writes one into a temporary home,
so nothing from the developer's own Codex set-up is used. Skipped, with a reason, only when no `codex`
executable is found outside CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ki2api_tray.config import DEFAULT_API_KEY
from ki2api_tray.service import ClientFiles
from tests.fake_kiro.scenarios import tool_use_id_for
from tests.fixtures_proxy import Proxy

ROOT = Path(__file__).resolve().parent.parent
LOCAL_CODEX = ROOT / "build" / "codex" / "node_modules" / ".bin" / "codex"
CLI_TIMEOUT = 120
MODEL = "claude-sonnet-4.5"


def find_codex() -> str | None:
    if LOCAL_CODEX.is_file() and os.access(LOCAL_CODEX, os.X_OK):
        return str(LOCAL_CODEX)
    return shutil.which("codex")


CODEX = find_codex()
pytestmark = pytest.mark.skipif(
    CODEX is None and os.environ.get("CI") != "true",
    reason=f"Codex CLI not installed (neither {LOCAL_CODEX} nor `codex` on PATH); "
    "install it with `npm install --prefix build/codex @openai/codex@0.171.0`",
)


def codex_home(proxy: Proxy, home: Path) -> Path:
    folder = home / ".codex"
    folder.mkdir(exist_ok=True)
    (folder / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "ki2api"\n'
        "[model_providers.ki2api]\n"
        'name = "ki2api"\n'
        f'base_url = "{proxy.openai_base}"\n'
        'env_key = "KI2API_KEY"\n'
        'wire_api = "responses"\n',
        encoding="utf-8",
    )
    return folder


def run_codex(proxy: Proxy, home: Path, cwd: Path, prompt: str) -> tuple[list[dict[str, Any]], str]:
    """`codex exec --json PROMPT`; returns its JSONL events and the last agent message."""
    assert CODEX is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env.update(HOME=str(home), CODEX_HOME=str(codex_home(proxy, home)), KI2API_KEY=DEFAULT_API_KEY, NO_COLOR="1")
    last = home / "last-message.txt"
    command = [
        CODEX, "exec", "--json", "--skip-git-repo-check", "--ephemeral",
        "--dangerously-bypass-approvals-and-sandbox", "--output-last-message", str(last), prompt,
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL
    )
    report = f"exit {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    assert done.returncode == 0, report
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert not [e for e in events if e.get("type") in ("error", "turn.failed")], report
    return events, last.read_text(encoding="utf-8") if last.exists() else ""


def current(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def test_codex_prompt_is_answered(proxy: Proxy, isolated_home: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    events, answer = run_codex(proxy, isolated_home, cwd, "Say hello to ki2api")

    # The fake echoes the start of what it got: Codex's own instructions ride ahead of the prompt.
    assert answer.startswith("Echo: You are a coding agent")
    fake = proxy.kiro.fake
    assert fake.rejections == [], "ki2api sent Kiro a request it refuses"
    asked = [r.json for r in fake.chat_requests() if "Say hello to ki2api" in current(r.json)["content"]]
    assert asked, "the prompt never reached Kiro"
    tools = [t["toolSpecification"]["name"] for t in current(asked[0])["userInputMessageContext"]["tools"]]
    assert "exec_command" in tools, tools
    assert any(e.get("type") == "turn.completed" for e in events)


def test_codex_runs_a_command_in_a_tool_round_trip(proxy: Proxy, isolated_home: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "hello.txt").write_text("hi from the codex round trip\n", encoding="utf-8")
    arguments = json.dumps({"cmd": "cat hello.txt"})
    marker = f"[[fake:tool:exec_command:{arguments}]]"

    events, answer = run_codex(proxy, isolated_home, cwd, f"Show me hello.txt {marker}")

    fake = proxy.kiro.fake
    assert fake.rejections == [], "ki2api sent Kiro a request it refuses"
    bodies = [r.json for r in fake.chat_requests()]
    results = [b for b in bodies if current(b).get("userInputMessageContext", {}).get("toolResults")]
    assert len(results) == 1, [current(b)["content"][-200:] for b in bodies]
    [result] = current(results[0])["userInputMessageContext"]["toolResults"]
    assert result["toolUseId"] == tool_use_id_for("exec_command", arguments)
    assert "hi from the codex round trip" in "".join(block["text"] for block in result["content"])
    assert "Echo:" in answer
    items = [e["item"] for e in events if e.get("type") == "item.completed"]
    commands = [item for item in items if item.get("type") == "command_execution"]
    assert commands and "cat hello.txt" in commands[0]["command"]


def test_codex_works_with_the_config_ki2api_writes(proxy: Proxy, isolated_home: Path, tmp_path: Path) -> None:
    """The tray's "Set up a client" for Codex: the merged config.toml alone, no environment variable for the key."""
    assert CODEX is not None
    (isolated_home / ".codex").mkdir()
    (isolated_home / ".codex" / "config.toml").write_text('approval_policy = "never"\n', encoding="utf-8")
    files = ClientFiles(tmp_path / "state", home=isolated_home)
    files.apply(files.plan("codex", proxy.openai_base, DEFAULT_API_KEY))
    cwd = tmp_path / "work"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_", "KI2API_"))}
    env.update(HOME=str(isolated_home), CODEX_HOME=str(isolated_home / ".codex"), NO_COLOR="1")
    command = [CODEX, "exec", "--json", "--skip-git-repo-check", "--ephemeral", "Hello from the written config"]
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-3000:]
    asked = [
        r.json for r in proxy.kiro.fake.chat_requests() if "Hello from the written config" in current(r.json)["content"]
    ]
    assert asked, "the prompt never reached Kiro"
    assert "Echo:" in done.stdout

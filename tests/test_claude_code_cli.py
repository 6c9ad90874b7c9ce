"""The real Claude Code CLI, headless (`claude -p ... --output-format json`), through ki2api to the fake Kiro.

As design.md §5 suggests. Install it with `npm install --prefix build/claude-code @anthropic-ai/claude-code` (build/ is
git-ignored); the npm package carries the Linux binary as an optional dependency, so nothing is fetched
from anywhere but the npm registry. Skipped, with a reason, only when no `claude` executable is found.
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
LOCAL_CLAUDE = ROOT / "build" / "claude-code" / "node_modules" / ".bin" / "claude"
CLI_TIMEOUT = 90


def find_claude() -> str | None:
    if LOCAL_CLAUDE.is_file() and os.access(LOCAL_CLAUDE, os.X_OK):
        return str(LOCAL_CLAUDE)
    return shutil.which("claude")


CLAUDE = find_claude()
# CI installs it (.ci/run), so there a missing CLI is a failure, never a silent skip.
pytestmark = pytest.mark.skipif(
    CLAUDE is None and os.environ.get("CI") != "true",
    reason=f"Claude Code CLI not installed (neither {LOCAL_CLAUDE} nor `claude` on PATH); "
    "install it with `npm install --prefix build/claude-code @anthropic-ai/claude-code`",
)


def run_claude(proxy: Proxy, home: Path, cwd: Path, prompt: str, *args: str) -> dict[str, Any]:
    """Run `claude -p PROMPT --output-format json` against ki2api; returns the parsed result object."""
    assert CLAUDE is not None
    scratch = home.parent / "claude-tmp"
    scratch.mkdir(exist_ok=True)
    # Nothing from the developer's own Claude Code / Anthropic setup may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        ANTHROPIC_BASE_URL=proxy.url,
        ANTHROPIC_API_KEY=DEFAULT_API_KEY,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        HOME=str(home),
        TMPDIR=str(scratch),  # else it leaves /tmp/claude-UID behind
    )
    command = [CLAUDE, "-p", prompt, "--output-format", "json", "--model", "claude-sonnet-4-5", *args]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT)
    report = f"exit {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    assert done.returncode == 0, report
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["is_error"] is False, report
    return result


def current(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def tool_names(body: dict[str, Any]) -> list[str]:
    tools = current(body).get("userInputMessageContext", {}).get("tools", [])
    return [tool["toolSpecification"]["name"] for tool in tools]


def test_claude_code_prompt_is_answered(proxy: Proxy, isolated_home: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    result = run_claude(proxy, isolated_home, cwd, "Say hello to ki2api")

    assert "Echo:" in result["result"]
    fake = proxy.kiro.fake
    assert fake.rejections == [], "ki2api sent Kiro a request it refuses"
    bodies = [request.json for request in fake.chat_requests()]
    asked = [body for body in bodies if "Say hello to ki2api" in current(body)["content"]]
    assert asked, "the prompt never reached Kiro"
    # Claude Code declares its whole tool set (Bash, Read, Edit, ...); Kiro accepted every declaration.
    names = tool_names(asked[0])
    assert len(names) >= 5 and {"Bash", "Read"} <= set(names), names


def test_claude_code_tool_round_trip(proxy: Proxy, isolated_home: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    target = cwd / "hello.txt"
    target.write_text("hi from the tool round trip\n", encoding="utf-8")
    arguments = json.dumps({"file_path": str(target)})
    marker = f"[[fake:tool:Read:{arguments}]]"

    result = run_claude(proxy, isolated_home, cwd, f"Read the file please {marker}", "--allowedTools", "Read")

    fake = proxy.kiro.fake
    assert fake.rejections == [], "ki2api sent Kiro a request it refuses"
    bodies = [request.json for request in fake.chat_requests()]
    # The fake asked for Read exactly once: the marker was only ever in one current message.
    assert len([body for body in bodies if marker in current(body)["content"]]) == 1
    with_results = [body for body in bodies if current(body).get("userInputMessageContext", {}).get("toolResults")]
    assert len(with_results) == 1, [current(body)["content"][-300:] for body in bodies]
    [tool_result] = current(with_results[0])["userInputMessageContext"]["toolResults"]
    assert tool_result["toolUseId"] == tool_use_id_for("Read", arguments)
    assert tool_result["status"] == "success"
    assert "hi from the tool round trip" in "".join(block["text"] for block in tool_result["content"])
    # The tool-result turn is answered by a plain echo, so Claude Code ends the conversation there.
    assert result["num_turns"] == 2
    assert "Echo:" in result["result"]
    assert result["permission_denials"] == []


def test_claude_code_web_search_runs_kiro_search(proxy: Proxy, isolated_home: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    arguments = json.dumps({"query": "python 3.14 release date"})
    marker = f"[[fake:tool:WebSearch:{arguments}]]"

    result = run_claude(proxy, isolated_home, cwd, f"Search the web please {marker}", "--allowedTools", "WebSearch")

    fake = proxy.kiro.fake
    assert fake.rejections == [], "ki2api sent Kiro a request it refuses"
    # Claude Code's WebSearch tool sent its side query; ki2api answered it with Kiro's /mcp search.
    [search] = [r.json for r in fake.mcp_requests()]
    assert search["params"]["arguments"]["query"] == "python 3.14 release date"
    bodies = [request.json for request in fake.chat_requests()]
    with_results = [body for body in bodies if current(body).get("userInputMessageContext", {}).get("toolResults")]
    assert len(with_results) == 1
    [tool_result] = current(with_results[0])["userInputMessageContext"]["toolResults"]
    assert tool_result["toolUseId"] == tool_use_id_for("WebSearch", arguments)
    text = "".join(block["text"] for block in tool_result["content"])
    # What Claude Code hands its model: the links the search found, not "Did 0 searches".
    assert "https://example.org/python-3-14-release-date/1" in text, text[:2000]
    assert "Echo:" in result["result"]


def test_claude_code_works_with_the_settings_ki2api_writes(proxy: Proxy, isolated_home: Path, tmp_path: Path) -> None:
    """The tray's "Set up a client" for Claude Code: only ~/.claude/settings.json points it at ki2api."""
    assert CLAUDE is not None
    files = ClientFiles(tmp_path / "state", home=isolated_home)
    files.apply(files.plan("claude-code", proxy.openai_base, DEFAULT_API_KEY))
    cwd = tmp_path / "work"
    cwd.mkdir()
    scratch = tmp_path / "claude-tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(HOME=str(isolated_home), TMPDIR=str(scratch), DISABLE_AUTOUPDATER="1")
    done = subprocess.run(
        [CLAUDE, "-p", "Hello from the written settings", "--output-format", "json"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    result = json.loads(done.stdout)
    assert result["is_error"] is False and "Echo:" in result["result"]
    bodies = [r.json for r in proxy.kiro.fake.chat_requests()]
    asked = [b for b in bodies if "Hello from the written settings" in current(b)["content"]]
    assert asked and current(asked[0])["modelId"] == "claude-sonnet-4.5"

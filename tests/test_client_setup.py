"""One-click client set-up: merged files, the diff shown first, backups, undo; and the tray's "Set up a client" menu.

The real Claude Code and Codex CLIs reading what was written are driven in test_claude_code_cli.py and
test_codex_cli.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import tomllib

from ki2api_tray.core import client_config
from ki2api_tray.core.client_config import SetupError
from ki2api_tray.service import ClientFiles

BASE = "http://127.0.0.1:8989/v1"
KEY = "my-secret-key"

EXISTING_SETTINGS = {
    "permissions": {"allow": ["Bash(ls:*)"]},
    "env": {"FOO": "bar", "ANTHROPIC_API_KEY": "sk-ant-old", "ANTHROPIC_BASE_URL": "https://api.anthropic.com"},
}
EXISTING_CODEX = """# my Codex setup
model = "gpt-5"
approval_policy = "on-request"

[model_providers.ki2api]
name = "old ki2api"
base_url = "http://127.0.0.1:9999/v1"

[model_providers.other]
name = "Other"
base_url = "https://example.org/v1"

[profiles.fast]
model = "gpt-5-mini"
"""


def test_claude_code_settings_merge_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(EXISTING_SETTINGS), encoding="utf-8")

    plan = ClientFiles(tmp_path / "state", home=tmp_path).plan("claude-code", BASE, KEY)

    after = json.loads(plan.after)
    assert after["permissions"] == EXISTING_SETTINGS["permissions"]
    env = after["env"]
    assert env["FOO"] == "bar"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8989" and env["ANTHROPIC_AUTH_TOKEN"] == KEY
    assert "ANTHROPIC_API_KEY" not in env  # it would win over the token and make Claude Code ask for a login
    assert env["ANTHROPIC_MODEL"] == "claude-sonnet-4.5"
    removed = [line for line in plan.diff.splitlines() if line.startswith("-") and "api.anthropic.com" in line]
    added = [line for line in plan.diff.splitlines() if line.startswith("+") and "ANTHROPIC_AUTH_TOKEN" in line]
    assert removed and added and str(path) in plan.diff
    assert json.loads(path.read_text(encoding="utf-8")) == EXISTING_SETTINGS, "a plan writes nothing"


def test_apply_keeps_a_backup_and_undo_restores_the_exact_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    original = json.dumps(EXISTING_SETTINGS, indent=4) + "\n"
    path.write_text(original, encoding="utf-8")

    files = ClientFiles(state, home=tmp_path)
    backup = files.apply(files.plan("claude-code", BASE, KEY), now=datetime(2026, 12, 1, 9, 30))

    assert backup is not None and backup.name == "settings.json.ki2api-backup-20261201-093000"
    assert backup.read_text(encoding="utf-8") == original
    assert json.loads(path.read_text(encoding="utf-8"))["env"]["ANTHROPIC_AUTH_TOKEN"] == KEY
    assert files.can_undo("claude-code")
    assert files.plan("claude-code", BASE, KEY).changed is False  # applying twice changes nothing more

    assert files.undo("claude-code") == path
    assert path.read_text(encoding="utf-8") == original
    assert not files.can_undo("claude-code")
    with pytest.raises(SetupError, match="no ki2api change to undo"):
        files.undo("claude-code")


def test_a_file_that_did_not_exist_is_removed_again_by_undo(tmp_path: Path) -> None:
    files = ClientFiles(tmp_path / "state", home=tmp_path)
    plan = files.plan("codex", BASE, KEY)
    assert plan.before is None and plan.diff.startswith("--- /dev/null")

    assert files.apply(plan) is None
    config = tomllib.loads((tmp_path / ".codex" / "config.toml").read_text(encoding="utf-8"))
    assert config["model_provider"] == "ki2api"
    files.undo("codex")
    assert not (tmp_path / ".codex" / "config.toml").exists()


def test_codex_config_merge(tmp_path: Path) -> None:
    path = tmp_path / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(EXISTING_CODEX, encoding="utf-8")

    plan = client_config.plan_codex(path, EXISTING_CODEX, BASE, KEY, model="claude-opus-4.6")

    config = tomllib.loads(plan.after)
    assert config["model"] == "claude-opus-4.6" and config["model_provider"] == "ki2api"
    assert config["approval_policy"] == "on-request"
    assert config["profiles"] == {"fast": {"model": "gpt-5-mini"}}
    assert config["model_providers"]["other"] == {"name": "Other", "base_url": "https://example.org/v1"}
    provider = config["model_providers"]["ki2api"]
    assert provider["base_url"] == BASE and provider["wire_api"] == "responses"
    assert provider["http_headers"] == {"Authorization": f"Bearer {KEY}"}
    assert "# my Codex setup" in plan.after


@pytest.mark.parametrize(
    ("name", "text", "plan"),
    [
        (".claude/settings.json", "{not json", "claude-code"),
        (".claude/settings.json", "[1, 2]", "claude-code"),
        (".codex/config.toml", "model = ", "codex"),
    ],
)
def test_unreadable_files_are_refused_not_overwritten(tmp_path: Path, name: str, text: str, plan: str) -> None:
    path = tmp_path / name
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SetupError, match=str(path)):
        ClientFiles(tmp_path / "state", home=tmp_path).plan(plan, BASE, KEY)
    assert path.read_text(encoding="utf-8") == text


def test_a_file_changed_after_the_preview_is_not_overwritten(tmp_path: Path) -> None:
    files = ClientFiles(tmp_path / "state", home=tmp_path)
    plan = files.plan("codex", BASE, KEY)
    path = tmp_path / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text('model = "mine"\n', encoding="utf-8")
    with pytest.raises(SetupError, match="changed since the preview"):
        files.apply(plan)
    assert path.read_text(encoding="utf-8") == 'model = "mine"\n'


def test_undo_refuses_to_lose_edits_made_after_writing(tmp_path: Path) -> None:
    files = ClientFiles(tmp_path / "state", home=tmp_path)
    files.apply(files.plan("codex", BASE, KEY))
    path = tmp_path / ".codex" / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# my own note\n", encoding="utf-8")
    with pytest.raises(SetupError, match="edited after ki2api wrote it"):
        files.undo("codex")
    assert "# my own note" in path.read_text(encoding="utf-8")


def test_snippets_name_the_url_key_and_model_for_each_client() -> None:
    snippets = client_config.snippets(BASE, KEY)
    assert set(snippets) == {"Cline", "Continue", "Cursor", "Cherry Studio", "Open WebUI", "LangChain", "curl"}
    for name, text in snippets.items():
        assert KEY in text, name
        assert "http://127.0.0.1:8989" in text, name
    assert "http://127.0.0.1:8989/v1" not in snippets["Cherry Studio"]  # it adds /v1 itself


def test_tray_set_up_a_client_previews_then_applies_then_undoes(isolated_home: Path) -> None:
    from tests.test_tray import FakeDesktop, make_tray

    desktop = FakeDesktop()
    tray, _, icon = make_tray(desktop=desktop)
    menu = next(item for item in icon.menu if item.text == "Set up a client").submenu
    entries = {item.text: item for item in menu if item.text}
    assert not entries["Codex: apply the changes"].enabled, "nothing can be written before the diff was shown"

    entries["Codex: show the changes"](icon)
    assert desktop.opened and Path(desktop.opened[-1]).read_text(encoding="utf-8").startswith("--- /dev/null")
    assert not (isolated_home / ".codex" / "config.toml").exists()
    assert entries["Codex: apply the changes"].enabled

    entries["Codex: apply the changes"](icon)
    written = tomllib.loads((isolated_home / ".codex" / "config.toml").read_text(encoding="utf-8"))
    assert written["model_providers"]["ki2api"]["base_url"] == "http://127.0.0.1:8989/v1"
    assert entries["Codex: undo"].enabled and not entries["Codex: apply the changes"].enabled

    entries["Codex: undo"](icon)
    assert not (isolated_home / ".codex" / "config.toml").exists()

    copies = {item.text: item for item in entries["Copy settings for"].submenu}
    copies["Continue"](icon)
    assert "apiBase: http://127.0.0.1:8989/v1" in desktop.copied[-1]

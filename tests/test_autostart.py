from __future__ import annotations

import plistlib
import sys
from pathlib import Path

import pytest

from ki2api_tray.desktop import autostart
from ki2api_tray.desktop.autostart import (
    RUN_KEY,
    STARTUP_APPROVED_ENABLED,
    STARTUP_APPROVED_KEY,
    LaunchAgentAutostart,
    RunKeyAutostart,
    XdgAutostart,
    desktop_entry,
    desktop_entry_enabled,
    launch_agent_plist,
    launch_command,
    run_key_value,
    startup_approved_enabled,
)


class DictRegistry:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str | bytes] = {}

    def read(self, key: str, name: str) -> str | bytes | None:
        return self.values.get((key, name))

    def write_string(self, key: str, name: str, value: str) -> None:
        self.values[(key, name)] = value

    def write_binary(self, key: str, name: str, value: bytes) -> None:
        self.values[(key, name)] = value

    def delete(self, key: str, name: str) -> None:
        self.values.pop((key, name), None)


def test_launch_command_frozen_is_the_executable() -> None:
    assert launch_command(frozen=True, executable="/opt/ki2api-tray/ki2api-tray") == ["/opt/ki2api-tray/ki2api-tray"]


def test_launch_command_from_source_runs_the_module() -> None:
    assert launch_command(frozen=False, executable="/usr/bin/python3", platform="linux") == [
        "/usr/bin/python3",
        "-m",
        "ki2api_tray",
    ]


def test_launch_command_on_windows_prefers_pythonw(tmp_path: Path) -> None:
    (tmp_path / "python.exe").touch()
    (tmp_path / "pythonw.exe").touch()
    command = launch_command(frozen=False, executable=str(tmp_path / "python.exe"), platform="win32")
    assert command == [str(tmp_path / "pythonw.exe"), "-m", "ki2api_tray"]


def test_autostart_xdg_enable_disable_with_real_files(isolated_home: Path) -> None:
    entry = autostart.for_this_os(platform="linux")
    assert isinstance(entry, XdgAutostart)
    path = isolated_home / ".config" / "autostart" / "ki2api-tray.desktop"
    assert entry.entry_file == path
    assert not entry.is_enabled()
    entry.enable()
    assert entry.is_enabled()
    text = path.read_text(encoding="utf-8")
    assert "[Desktop Entry]" in text and "Type=Application" in text
    assert f"Exec={sys.executable} -m ki2api_tray\n" in text
    entry.disable()
    assert not path.exists()
    assert not entry.is_enabled()


@pytest.mark.parametrize(
    ("extra", "enabled"),
    [("", True), ("Hidden=true\n", False), ("X-GNOME-Autostart-enabled=false\n", False), ("Hidden=false\n", True)],
)
def test_autostart_xdg_respects_switches_set_by_the_desktop(isolated_home: Path, extra: str, enabled: bool) -> None:
    entry = autostart.for_this_os(platform="linux")
    assert isinstance(entry, XdgAutostart)
    entry.enable()
    entry.entry_file.write_text(
        entry.entry_file.read_text(encoding="utf-8").replace("X-GNOME-Autostart-enabled=true\n", extra)
    )
    assert entry.is_enabled() is enabled


def test_autostart_xdg_honours_xdg_config_home(tmp_path: Path) -> None:
    entry = autostart.for_this_os({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}, "linux")
    assert isinstance(entry, XdgAutostart)
    assert entry.entry_file == tmp_path / "cfg" / "autostart" / "ki2api-tray.desktop"


def test_desktop_entry_quotes_paths_with_spaces() -> None:
    text = desktop_entry(["/home/a b/ki2api tray", "--flag"])
    assert 'Exec="/home/a b/ki2api tray" --flag\n' in text
    assert desktop_entry_enabled(text)


def test_launch_agent_plist_content() -> None:
    data = plistlib.loads(launch_agent_plist(["/Applications/ki2api-tray.app/Contents/MacOS/ki2api-tray"]))
    assert data["Label"] == "io.github.ki2api.tray"
    assert data["ProgramArguments"] == ["/Applications/ki2api-tray.app/Contents/MacOS/ki2api-tray"]
    assert data["RunAtLoad"] is True


def test_autostart_launch_agent_enable_disable(isolated_home: Path) -> None:
    entry = autostart.for_this_os(platform="darwin")
    assert isinstance(entry, LaunchAgentAutostart)
    assert entry.plist_file == isolated_home / "Library" / "LaunchAgents" / "io.github.ki2api.tray.plist"
    assert not entry.is_enabled()
    entry.enable()
    assert entry.is_enabled()
    entry.plist_file.write_bytes(b"not a plist")
    assert not entry.is_enabled()
    entry.disable()
    assert not entry.plist_file.exists()


def test_run_key_value_quotes_every_argument() -> None:
    assert run_key_value([r"C:\Program Files\ki2api\ki2api-tray.exe"]) == r'"C:\Program Files\ki2api\ki2api-tray.exe"'
    assert run_key_value([r"C:\Py\pythonw.exe", "-m", "ki2api_tray"]) == r'"C:\Py\pythonw.exe" "-m" "ki2api_tray"'


@pytest.mark.parametrize(
    ("data", "enabled"),
    [
        (None, True),
        (STARTUP_APPROVED_ENABLED, True),
        (b"\x06" + b"\x00" * 11, True),
        (b"\x03\x00\x00\x00" + bytes.fromhex("d0a1b2c3d4e5d601"), False),
        (b"\x01" + b"\x00" * 11, False),
    ],
)
def test_startup_approved_enabled(data: bytes | None, enabled: bool) -> None:
    assert startup_approved_enabled(data) is enabled


def test_autostart_run_key_enable_disable() -> None:
    registry = DictRegistry()
    entry = RunKeyAutostart([r"C:\ki2api\ki2api-tray.exe"], registry)
    assert not entry.is_enabled()
    entry.enable()
    assert registry.values[(RUN_KEY, "ki2api-tray")] == r'"C:\ki2api\ki2api-tray.exe"'
    assert registry.values[(STARTUP_APPROVED_KEY, "ki2api-tray")] == STARTUP_APPROVED_ENABLED
    assert entry.is_enabled()
    entry.disable()
    assert registry.values == {}
    assert not entry.is_enabled()


def test_autostart_run_key_switched_off_in_task_manager_reads_as_disabled() -> None:
    registry = DictRegistry()
    entry = RunKeyAutostart([r"C:\ki2api\ki2api-tray.exe"], registry)
    entry.enable()
    registry.values[(STARTUP_APPROVED_KEY, "ki2api-tray")] = b"\x03" + b"\x00" * 3 + b"\x11" * 8
    assert not entry.is_enabled()
    entry.enable()  # switching it on from the tray also clears Task Manager's "disabled"
    assert entry.is_enabled()

"""Start at login, per OS: Windows Run key, macOS LaunchAgent plist, Linux XDG autostart entry.

`is_enabled()` always reads the real OS state (a person may have switched it off in Task Manager or
deleted the file). The file and registry contents are built by pure functions so they can be tested anywhere.
"""

from __future__ import annotations

import importlib
import os
import plistlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from xml.parsers.expat import ExpatError

from .. import paths
from .translocation import placement_problem

ENTRY_NAME = "ki2api-tray"
LAUNCH_AGENT_LABEL = "io.github.ki2api.tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
STARTUP_APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
# What Task Manager writes for an enabled entry: first byte even (02), the FILETIME part zero.
STARTUP_APPROVED_ENABLED = b"\x02" + b"\x00" * 11


class AutostartRefused(Exception):
    """Start at login cannot be switched on from where the app runs; the message says what to do."""


class Autostart(Protocol):
    def is_enabled(self) -> bool: ...

    def enable(self) -> None: ...

    def disable(self) -> None: ...


def launch_command(
    frozen: bool | None = None, executable: str | None = None, platform: str = sys.platform
) -> list[str]:
    """How the OS should start us: the frozen executable itself, or this Python with `-m ki2api_tray`."""
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    executable = executable or sys.executable
    if frozen:
        return [executable]
    if platform == "win32":
        # python.exe would open a console window at every login; pythonw.exe is the windowless twin.
        windowless = Path(executable).with_name("pythonw.exe")
        if windowless.exists():
            executable = str(windowless)
    return [executable, "-m", "ki2api_tray"]


# --- pure content builders ---------------------------------------------------------------------------


def desktop_entry(command: Sequence[str]) -> str:
    """A freedesktop autostart entry (https://specifications.freedesktop.org/autostart-spec/)."""
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=ki2api tray\n"
        "Comment=Local OpenAI/Anthropic API for your Kiro login\n"
        f"Exec={_desktop_exec(command)}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def _desktop_exec(command: Sequence[str]) -> str:
    """Quote arguments the way the Desktop Entry spec wants (double quotes, backslash escapes, %% for %)."""
    quoted = []
    for arg in command:
        escaped = arg.replace("%", "%%")
        if any(c in escaped for c in " \t\"'\\><~|&;$*?#()`"):
            escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
            escaped += '"'
        quoted.append(escaped)
    return " ".join(quoted)


def desktop_entry_enabled(text: str) -> bool:
    """False when the entry hides itself (Hidden=true) or GNOME's switch is off."""
    values: dict[str, str] = {}
    in_main = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_main = line == "[Desktop Entry]"
        elif in_main and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().lower()
    return values.get("Hidden") != "true" and values.get("X-GNOME-Autostart-enabled", "true") != "false"


def launch_agent_plist(command: Sequence[str]) -> bytes:
    """A per-user LaunchAgent; launchd reads it at the next login without `launchctl`."""
    return plistlib.dumps(
        {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
        }
    )


def run_key_value(command: Sequence[str]) -> str:
    """The Run-key command line: every argument quoted, so paths with spaces work."""
    return " ".join('"' + arg.replace('"', '\\"') + '"' for arg in command)


def startup_approved_enabled(data: bytes | None) -> bool:
    """Task Manager's switch: no value means enabled; an odd first byte (01, 03, 07) means disabled."""
    if not data:
        return True
    return data[0] % 2 == 0


# --- Linux --------------------------------------------------------------------------------------------


class XdgAutostart:
    def __init__(self, entry_file: Path, command: Sequence[str]) -> None:
        self.entry_file = entry_file
        self.command = list(command)

    def is_enabled(self) -> bool:
        try:
            return desktop_entry_enabled(self.entry_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, UnicodeDecodeError):
            return False

    def enable(self) -> None:
        self.entry_file.parent.mkdir(parents=True, exist_ok=True)
        self.entry_file.write_text(desktop_entry(self.command), encoding="utf-8")

    def disable(self) -> None:
        self.entry_file.unlink(missing_ok=True)


# --- macOS --------------------------------------------------------------------------------------------


class LaunchAgentAutostart:
    def __init__(self, plist_file: Path, command: Sequence[str], platform: str = "darwin") -> None:
        self.plist_file = plist_file
        self.command = list(command)
        self.platform = platform

    def is_enabled(self) -> bool:
        try:
            data = plistlib.loads(self.plist_file.read_bytes())
        except (FileNotFoundError, plistlib.InvalidFileException, ValueError, ExpatError):
            return False
        return bool(data.get("RunAtLoad")) and not data.get("Disabled", False)

    def enable(self) -> None:
        problem = placement_problem(self.command[0], self.platform)
        if problem:  # a LaunchAgent pointing into a temporary copy would fail at the next login
            raise AutostartRefused(problem)
        self.plist_file.parent.mkdir(parents=True, exist_ok=True)
        self.plist_file.write_bytes(launch_agent_plist(self.command))

    def disable(self) -> None:
        self.plist_file.unlink(missing_ok=True)


# --- Windows ------------------------------------------------------------------------------------------


class Registry(Protocol):
    """The few HKEY_CURRENT_USER operations we need; the real one wraps winreg, tests use a dict."""

    def read(self, key: str, name: str) -> str | bytes | None: ...

    def write_string(self, key: str, name: str, value: str) -> None: ...

    def write_binary(self, key: str, name: str, value: bytes) -> None: ...

    def delete(self, key: str, name: str) -> None: ...


def _winreg() -> Any:
    """winreg, imported only when used (it exists on Windows alone)."""
    return importlib.import_module("winreg")


class WinRegistry:
    """HKEY_CURRENT_USER through winreg (Windows only)."""

    def read(self, key: str, name: str) -> str | bytes | None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
                value, _kind = winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        return value if isinstance(value, (str, bytes)) else None

    def write_string(self, key: str, name: str, value: str) -> None:
        winreg = _winreg()
        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, key) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

    def write_binary(self, key: str, name: str, value: bytes) -> None:
        winreg = _winreg()
        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, key) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_BINARY, value)

    def delete(self, key: str, name: str) -> None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
                winreg.DeleteValue(handle, name)
        except FileNotFoundError:
            pass


class RunKeyAutostart:
    def __init__(self, command: Sequence[str], registry: Registry | None = None) -> None:
        self.command = list(command)
        self.registry: Registry = registry or WinRegistry()

    def is_enabled(self) -> bool:
        if not self.registry.read(RUN_KEY, ENTRY_NAME):
            return False
        # Task Manager and Settings switch an entry off here without touching the Run key.
        approved = self.registry.read(STARTUP_APPROVED_KEY, ENTRY_NAME)
        return startup_approved_enabled(approved if isinstance(approved, bytes) else None)

    def enable(self) -> None:
        self.registry.write_string(RUN_KEY, ENTRY_NAME, run_key_value(self.command))
        self.registry.write_binary(STARTUP_APPROVED_KEY, ENTRY_NAME, STARTUP_APPROVED_ENABLED)

    def disable(self) -> None:
        self.registry.delete(RUN_KEY, ENTRY_NAME)
        self.registry.delete(STARTUP_APPROVED_KEY, ENTRY_NAME)


def for_this_os(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Autostart:
    """The autostart mechanism of the running OS, starting the current program."""
    command = launch_command(platform=platform)
    home = paths.home_dir(environ)
    if platform == "win32":
        return RunKeyAutostart(command)
    if platform == "darwin":
        return LaunchAgentAutostart(home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist", command)
    config_home = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else home / ".config"
    return XdgAutostart(config_home / "autostart" / f"{ENTRY_NAME}.desktop", command)

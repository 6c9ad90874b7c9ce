"""Where ki2api keeps its files, and where Kiro keeps the token.

`KI2API_HOME` moves config, logs and state into one folder (tests, portable installs); otherwise
platformdirs picks each OS's usual place. Kiro's own files are not ours: they live under the home
directory on every OS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "ki2api-tray"


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    log_dir: Path
    state_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "ki2api-tray.log"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "ki2api-tray.lock"


def app_paths(environ: Mapping[str, str] = os.environ) -> AppPaths:
    home = environ.get("KI2API_HOME")
    if home:
        root = Path(home).expanduser()
        return AppPaths(config_dir=root, log_dir=root / "logs", state_dir=root / "state")
    # appauthor=False: the default would double the folder on Windows (...\ki2api-tray\ki2api-tray).
    dirs = PlatformDirs(APP_NAME, appauthor=False)
    return AppPaths(
        config_dir=Path(dirs.user_config_dir),
        log_dir=Path(dirs.user_log_dir),
        state_dir=Path(dirs.user_state_dir),
    )


def home_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The user's home; honours HOME / USERPROFILE from `environ` so tests can move it."""
    for key in ("HOME", "USERPROFILE") if sys.platform != "win32" else ("USERPROFILE", "HOME"):
        if environ.get(key):
            return Path(environ[key])
    return Path.home()


def default_token_file(environ: Mapping[str, str] = os.environ) -> Path:
    return home_dir(environ) / ".aws" / "sso" / "cache" / "kiro-auth-token.json"


def kiro_profile_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Kiro's `profile.json`: the selected profile ARN, needed when the token carries none."""
    tail = Path("Kiro") / "User" / "globalStorage" / "kiro.kiroagent" / "profile.json"
    if sys.platform == "win32":
        appdata = environ.get("APPDATA")
        base = Path(appdata) if appdata else home_dir(environ) / "AppData" / "Roaming"
    elif sys.platform == "darwin":
        base = home_dir(environ) / "Library" / "Application Support"
    else:
        xdg = environ.get("XDG_CONFIG_HOME")
        base = Path(xdg) if xdg else home_dir(environ) / ".config"
    return base / tail


def default_kiro_cli_db(environ: Mapping[str, str] = os.environ) -> Path:
    """kiro-cli's login database per OS (kiro-protocol-2026.md §5)."""
    if sys.platform == "win32":
        local = environ.get("LOCALAPPDATA")
        base = Path(local) if local else home_dir(environ) / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = home_dir(environ) / "Library" / "Application Support"
    else:
        xdg = environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else home_dir(environ) / ".local" / "share"
    return base / "kiro-cli" / "data.sqlite3"

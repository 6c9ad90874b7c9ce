"""Where the files shipped next to the code (icons in `assets/`) are, frozen or run from source.

PyInstaller unpacks bundled data under `sys._MEIPASS` (the `_internal` folder of a onedir build, or
`Contents/Frameworks` in a macOS `.app`); from a source checkout they sit in the repository's `assets/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ASSETS = "assets"


def is_frozen() -> bool:
    """True inside a PyInstaller build (the bootloader sets `sys.frozen`)."""
    return bool(getattr(sys, "frozen", False))


def assets_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle) / ASSETS
    return Path(__file__).resolve().parent.parent / ASSETS


def asset(name: str) -> Path:
    """The path of one bundled file; FileNotFoundError names the folder that was searched."""
    path = assets_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in {path.parent}")
    return path

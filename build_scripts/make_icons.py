"""Regenerate the app icon files in assets/ from the tray's own drawing code, so the two never drift apart.

Writes icon.png (1024 px master), icon.ico (Windows, 16-256 px) and icon.icns (macOS, 16-1024 px incl. @2x).
Pillow writes all three formats itself, so this runs on any OS; macOS's `iconutil` is not needed.
Run: python build_scripts/make_icons.py [OUT_DIR]   (default: assets/ next to this folder)
"""

from __future__ import annotations

import sys
from pathlib import Path

MASTER_SIZE = 1024
# Windows picks the nearest size per context (16 title bar, 24/32 taskbar, 48 Explorer, 256 large tiles).
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "assets"


def write_icons(out_dir: Path) -> list[Path]:
    """Draw the master once and save it in every format the builds need; returns the files written."""
    # Imported here so `--help` works without the package installed, and so the error says what is missing.
    from ki2api_tray.desktop.icons import app_icon

    out_dir.mkdir(parents=True, exist_ok=True)
    master = app_icon(MASTER_SIZE)
    targets = [out_dir / "icon.png", out_dir / "icon.ico", out_dir / "icon.icns"]
    png, ico, icns = targets
    master.save(png, optimize=True)
    master.save(ico, sizes=ICO_SIZES)
    master.save(icns)  # Pillow derives the 16..512 and @2x entries from the 1024 px master
    return targets


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    out_dir = Path(argv[0]) if argv else DEFAULT_OUT
    for path in write_icons(out_dir):
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

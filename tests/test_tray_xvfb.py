"""The real tray under Xvfb: the GTK backend docks in a fresh trayer and its menu opens (Linux only).

Skipped only when Xvfb is missing. CI installs: xvfb trayer xdotool imagemagick dbus-x11 x11-utils
python3-gi gir1.2-gtk-3.0 fonts-dejavu-core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).parent / "xvfb" / "tray_screenshot.sh"

pytestmark = [
    pytest.mark.xvfb,
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed"),
]


def _count(image: Image.Image, box: tuple[int, int, int, int], test: Callable[[tuple[int, int, int]], bool]) -> int:
    data = image.crop(box).convert("RGB").tobytes()
    return sum(1 for pixel in zip(data[0::3], data[1::3], data[2::3], strict=True) if test(pixel))


def test_tray_xvfb_icon_docks_and_menu_opens(tmp_path: Path) -> None:
    out = tmp_path / "tray.png"
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("PYSTRAY_BACKEND", None)  # the script chooses the GTK backend itself
    completed = subprocess.run(
        ["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    image = Image.open(out)

    # The icon: violet tile pixels and the green "running and healthy" badge in the tray's first cell.
    tray_cell = (0, 0, 32, 32)
    assert _count(image, tray_cell, lambda p: p[2] > 150 and p[0] < 170 and p[1] < 110) > 60
    assert _count(image, tray_cell, lambda p: p[1] > 150 and p[0] < 110 and p[2] < 140) > 20

    # The menu: a light panel below the tray with dark text on it (the screen behind it is black).
    menu_area = (0, 40, 300, 450)  # the whole menu, About and Quit included
    light = _count(image, menu_area, lambda p: min(p) > 220)
    text = _count(image, menu_area, lambda p: max(p) < 90)
    assert light > 40_000
    assert text > 800

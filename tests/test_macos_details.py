"""macOS details checked here by their inputs: App Translocation paths, the Retina menu-bar image."""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ki2api_tray.desktop.autostart import AutostartRefused, LaunchAgentAutostart
from ki2api_tray.desktop.icons import BADGE, menu_bar_icon
from ki2api_tray.desktop.menu_bar import retina_icon_class, retina_png
from ki2api_tray.desktop.translocation import app_bundle, is_on_disk_image, is_translocated, placement_problem
from ki2api_tray.wording import Level

TRANSLOCATED = (
    "/private/var/folders/7x/k3b9dn1d2qg0rcjbq2_5p9rw0000gn/T/AppTranslocation/"
    "5B7E6C1A-0D33-4E4C-9A0B-2F4E7F1C9D11/d/ki2api-tray.app/Contents/MacOS/ki2api-tray"
)
INSTALLED = "/Applications/ki2api-tray.app/Contents/MacOS/ki2api-tray"
ON_DMG = "/Volumes/ki2api tray/ki2api-tray.app/Contents/MacOS/ki2api-tray"


@pytest.mark.parametrize(
    ("executable", "translocated"),
    [
        (TRANSLOCATED, True),
        (INSTALLED, False),
        ("/Users/ann/Downloads/ki2api-tray.app/Contents/MacOS/ki2api-tray", False),  # quarantine removed: fine
        ("/Users/ann/Applications/ki2api-tray.app/Contents/MacOS/ki2api-tray", False),
        ("/usr/local/bin/python3", False),
    ],
)
def test_translocation_is_recognised_by_its_path(executable: str, translocated: bool) -> None:
    assert is_translocated(executable) is translocated
    assert bool(placement_problem(executable, platform="darwin")) is translocated


def test_placement_problem_names_applications_and_only_on_macos() -> None:
    assert "Applications" in placement_problem(TRANSLOCATED, platform="darwin")
    assert placement_problem(TRANSLOCATED, platform="win32") == ""


def test_disk_image_only_when_read_only() -> None:
    assert is_on_disk_image(ON_DMG, read_only=True)
    assert not is_on_disk_image("/Volumes/Apps/ki2api-tray.app/Contents/MacOS/ki2api-tray", read_only=False)
    assert not is_on_disk_image(INSTALLED, read_only=True)


def test_app_bundle_of_an_executable() -> None:
    assert str(app_bundle(TRANSLOCATED)).endswith("/d/ki2api-tray.app")
    assert app_bundle("/usr/bin/python3") is None


def test_launch_agent_refuses_a_translocated_path(tmp_path: Path) -> None:
    plist = tmp_path / "LaunchAgents" / "io.github.ki2api.tray.plist"
    agent = LaunchAgentAutostart(plist, [TRANSLOCATED])

    with pytest.raises(AutostartRefused, match="Move ki2api-tray.app to the Applications folder"):
        agent.enable()

    assert not plist.exists()
    LaunchAgentAutostart(plist, [INSTALLED]).enable()
    assert plist.exists()


# --- the menu-bar image -------------------------------------------------------------------------------------


def test_menu_bar_icon_is_drawn_at_2x_for_18_points() -> None:
    image = menu_bar_icon(Level.OK)
    assert image.size == (36, 36) and image.mode == "RGBA"


@pytest.mark.parametrize("level", list(Level))
def test_menu_bar_badge_reads_on_light_and_dark_bars(level: Level) -> None:
    """The badge's own colour fills its centre, and a white ring parts it from the tile on any bar."""
    image = menu_bar_icon(level)
    centre = image.getpixel((int(36 * 49.5 / 64), int(36 * 49.5 / 64)))
    assert isinstance(centre, tuple)
    assert all(abs(a - b) <= 12 for a, b in zip(centre[:3], BADGE[level], strict=True))
    ring = image.getpixel((int(36 * 36 / 64), int(36 * 49.5 / 64)))  # left edge of the badge
    assert isinstance(ring, tuple) and min(ring[:3]) > 200 and ring[3] == 255


def test_retina_png_has_two_pixels_per_point() -> None:
    png = retina_png(Image.new("RGBA", (64, 64), (1, 2, 3, 255)), points=18)
    with Image.open(io.BytesIO(png)) as decoded:
        assert decoded.size == (36, 36)


class FakeNSImage:
    made: list[FakeNSImage] = []

    def __init__(self) -> None:
        self.data = b""
        self.size: tuple[float, float] | None = None

    @classmethod
    def alloc(cls) -> FakeNSImage:
        return cls()

    def initWithData_(self, data: bytes) -> FakeNSImage:  # noqa: N802 - AppKit names
        self.data = data
        FakeNSImage.made.append(self)
        return self

    def setSize_(self, size: tuple[float, float]) -> None:  # noqa: N802
        self.size = size


def test_retina_icon_hands_appkit_2x_pixels_sized_in_points(monkeypatch: pytest.MonkeyPatch) -> None:
    appkit = types.SimpleNamespace(NSImage=FakeNSImage)
    foundation = types.SimpleNamespace(
        NSData=types.SimpleNamespace(dataWithBytes_length_=lambda data, length: bytes(data[:length])),
        NSMakeSize=lambda w, h: (w, h),
    )
    monkeypatch.setitem(sys.modules, "AppKit", appkit)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "Foundation", foundation)  # type: ignore[arg-type]
    shown: list[Any] = []

    class DarwinLike:  # the attributes pystray 0.19.5's darwin Icon gives _assert_image
        def __init__(self) -> None:
            self.icon = menu_bar_icon(Level.WARN)
            self._icon_image = None
            self._status_bar = types.SimpleNamespace(thickness=lambda: 22.0)
            button = types.SimpleNamespace(setImage_=shown.append)
            self._status_item = types.SimpleNamespace(button=lambda: button)

    icon = retina_icon_class(DarwinLike)()
    icon._assert_image()
    icon._assert_image()  # unchanged image: not rebuilt

    [image] = FakeNSImage.made
    assert shown == [image] and image.size == (18, 18)
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.size == (36, 36)

"""The macOS menu-bar image at Retina resolution.

pystray 0.19.5's darwin backend (`_assert_image`) scales the icon to the status bar's thickness *in pixels*
(22 px) and hands AppKit a PNG whose size is taken as 22 points, so a Retina screen doubles every pixel and
the icon looks blurred. `retina_icon_class` overrides that one method: the PNG has 2 pixels per point and the
NSImage is told its size in points. It relies on pystray's private `_status_bar`, `_status_item` and
`_icon_image` attributes, which is why pyproject.toml pins pystray to the version read.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from .icons import MENU_BAR_POINTS, MENU_BAR_SCALE


def retina_png(image: Image.Image, points: int, scale: int = MENU_BAR_SCALE) -> bytes:
    """`image` as a PNG of `points` x `scale` pixels a side (resized only when it is not that size already)."""
    pixels = points * scale
    if image.size != (pixels, pixels):
        image = image.resize((pixels, pixels), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def retina_icon_class(base: type[Any]) -> type[Any]:
    """pystray's darwin `Icon` with a menu-bar image of 2 pixels per point."""

    class RetinaIcon(base):  # type: ignore[misc, valid-type]
        _ki2api_png: bytes | None = None

        def _assert_image(self) -> None:
            import AppKit  # type: ignore[import-not-found]
            import Foundation  # type: ignore[import-not-found]

            points = min(MENU_BAR_POINTS, int(self._status_bar.thickness()))
            png = retina_png(self.icon, points)
            if getattr(self, "_icon_image", None) is not None and png == self._ki2api_png:
                return
            image = AppKit.NSImage.alloc().initWithData_(Foundation.NSData.dataWithBytes_length_(png, len(png)))
            image.setSize_(Foundation.NSMakeSize(points, points))  # points, so AppKit uses the 2x pixels
            self._icon_image, self._ki2api_png = image, png
            self._status_item.button().setImage_(image)

    RetinaIcon.__name__ = RetinaIcon.__qualname__ = f"Retina{base.__name__}"
    RetinaIcon.__module__ = base.__module__  # still recognisable as the darwin backend
    return RetinaIcon

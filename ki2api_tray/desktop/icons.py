"""The tray icon, drawn with Pillow: a violet tile with a white "K›" glyph and a status badge.

Drawn at 4x (or more) and scaled down so edges stay smooth at 16-64 px. The badge colour is the state
(green / amber / red / grey); a stopped server also greys the tile, so it reads at a glance.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw

from ..wording import Level

SIZE = 64
_SCALE = 4
# macOS menu bar: 18 points tall in the 22-point bar, drawn with 2 pixels per point for Retina screens.
MENU_BAR_POINTS = 18
MENU_BAR_SCALE = 2

TILE = {"top": (139, 92, 246), "bottom": (91, 33, 182)}  # violet, close to Kiro's own brand colour
TILE_OFF = {"top": (156, 163, 175), "bottom": (107, 114, 128)}
BADGE: dict[Level, tuple[int, int, int]] = {
    Level.OK: (34, 197, 94),
    Level.WARN: (245, 158, 11),
    Level.BAD: (239, 68, 68),
    Level.OFF: (156, 163, 175),
}


@lru_cache(maxsize=16)
def status_icon(level: Level, size: int = SIZE) -> Image.Image:
    """The tray image for a level; cached because the tray asks for it on every refresh."""
    return _render(size, TILE_OFF if level is Level.OFF else TILE, BADGE[level])


@lru_cache(maxsize=8)
def menu_bar_icon(level: Level) -> Image.Image:
    """The macOS menu-bar image: 36 px for 18 pt at 2x, with a larger badge that still reads at that size."""
    size = MENU_BAR_POINTS * MENU_BAR_SCALE
    return _render(size, TILE_OFF if level is Level.OFF else TILE, BADGE[level], badge_box=(35, 35, 64, 64))


def app_icon(size: int = 256) -> Image.Image:
    """The application icon (installers, .ico/.icns): the tile and glyph without a badge."""
    return _render(size, TILE, None)


def _render(
    size: int,
    tile: dict[str, tuple[int, int, int]],
    badge: tuple[int, int, int] | None,
    badge_box: tuple[float, float, float, float] = (39, 39, 64, 64),
) -> Image.Image:
    # Drawn on a 64-unit grid at least 4x the target size, then scaled down: crisp edges at any size.
    scale = max(_SCALE, -(-size * _SCALE // SIZE))
    big = SIZE * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    _draw_tile(image, tile, scale)
    draw = ImageDraw.Draw(image)
    _draw_glyph(draw, scale)
    if badge is not None:
        _draw_badge(draw, badge, scale, badge_box)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _s(scale: int, *values: float) -> list[float]:
    return [v * scale for v in values]


def _draw_tile(image: Image.Image, colours: dict[str, tuple[int, int, int]], scale: int) -> None:
    """A rounded square with a top-to-bottom gradient, like a desktop app icon."""
    big = image.width
    gradient = Image.new("RGBA", (big, big))
    top, bottom = colours["top"], colours["bottom"]
    pixels = ImageDraw.Draw(gradient)
    for y in range(big):
        t = y / (big - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        pixels.line([(0, y), (big, y)], fill=(*colour, 255))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle(_s(scale, 2, 2, 62, 62), radius=14 * scale, fill=255)
    image.paste(gradient, (0, 0), mask)


def _draw_glyph(draw: ImageDraw.ImageDraw, scale: int) -> None:
    """A bold "K" with a chevron after it: Kiro, passed on."""
    white = (255, 255, 255, 255)
    draw.rectangle(_s(scale, 11, 13, 19.5, 51), fill=white)  # stem
    draw.polygon(_s(scale, 19.5, 29, 30, 13, 40, 13, 19.5, 43), fill=white)  # upper arm
    draw.polygon(_s(scale, 22, 38.5, 30.5, 26, 39, 51, 29, 51), fill=white)  # lower leg, overlapping the arm
    draw.polygon(_s(scale, 41, 14, 47, 14, 55, 23, 47, 32, 41, 32, 49, 23), fill=white)  # chevron


def _draw_badge(
    draw: ImageDraw.ImageDraw, colour: tuple[int, int, int], scale: int, box: tuple[float, float, float, float]
) -> None:
    """A status dot in the lower-right corner with a white ring so it stands out on any tray."""
    left, top, right, bottom = box
    ring = (right - left) * 0.14
    draw.ellipse(_s(scale, left, top, right, bottom), fill=(255, 255, 255, 255))
    draw.ellipse(_s(scale, left + ring, top + ring, right - ring, bottom - ring), fill=(*colour, 255))

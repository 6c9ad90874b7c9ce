"""RFC 2397 `data:` URLs carrying base64 images, the way OpenAI clients send pictures inline."""

from __future__ import annotations

import re
from base64 import b64decode

from .model import ImagePart

_DATA_URL = re.compile(r"data:(?P<media>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)


def image_from_data_url(url: str) -> ImagePart:
    """The image in `data:image/png;base64,...`; ValueError says what is wrong, as a phrase.

    The reason reads after the field's name ("`x` must be base64-encoded ..."), so callers can put it
    in their own error without rewording it.
    """
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise ValueError("is not a valid data: URL (expected data:image/png;base64,...)")
    media_type = match["media"].strip().lower()
    if not media_type.startswith("image/"):
        # RFC 2397: an omitted media type means text/plain.
        raise ValueError(f"must hold an image, not {media_type[:40] or 'text/plain'}")
    if "base64" not in (param.strip().lower() for param in match["params"].split(";")):
        raise ValueError(f"must be base64-encoded (data:{media_type[:40]};base64,...)")
    # Some clients wrap long base64 at 76 columns; the line breaks are not data.
    data = "".join(match["data"].split())
    if not data:
        raise ValueError("contains no image data")
    try:
        b64decode(data, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII character
        raise ValueError("does not contain valid base64 data") from None
    return ImagePart(media_type=media_type, data=data)

"""Fetching images that clients give as http(s) URLs, with size and time limits.

Kiro only takes inline image bytes, so an `image_url` pointing at the web is downloaded here, once,
before the request is translated. Anything that is not a reasonably sized image is a clear 400.
"""

from __future__ import annotations

import base64
import dataclasses

import httpx

from ..core.errors import UnsupportedImage
from ..core.model import ChatRequest, ImagePart, Message

MAX_IMAGE_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT = 15.0
SUPPORTED_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


async def fetch_images(request: ChatRequest, http: httpx.AsyncClient) -> ChatRequest:
    """The same request with every URL-only image replaced by its downloaded bytes."""
    if not any(isinstance(p, ImagePart) and p.url and not p.data for m in request.messages for p in m.parts):
        return request
    messages = []
    for message in request.messages:
        parts = []
        for part in message.parts:
            if isinstance(part, ImagePart) and part.url and not part.data:
                part = await fetch_image(part.url, http)
            parts.append(part)
        messages.append(Message(role=message.role, parts=tuple(parts)))
    return dataclasses.replace(request, messages=tuple(messages))


async def fetch_image(url: str, http: httpx.AsyncClient) -> ImagePart:
    shown = url if len(url) <= 100 else url[:97] + "..."
    if not url.startswith(("http://", "https://")):
        raise UnsupportedImage(f"Image URL {shown} is not http(s) or a data: URL.", param="image_url")
    try:
        async with http.stream("GET", url, timeout=FETCH_TIMEOUT, follow_redirects=True) as response:
            if response.status_code != 200:
                raise UnsupportedImage(f"Could not download image {shown}: HTTP {response.status_code}.")
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type == "image/jpg":
                media_type = "image/jpeg"
            if media_type not in SUPPORTED_TYPES:
                raise UnsupportedImage(
                    f"Image {shown} is {media_type or 'of unknown type'}; Kiro accepts PNG, JPEG, GIF and WebP."
                )
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise UnsupportedImage(f"Image {shown} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    except httpx.HTTPError as exc:
        raise UnsupportedImage(f"Could not download image {shown} ({type(exc).__name__}).") from exc
    return ImagePart(media_type=media_type, data=base64.b64encode(bytes(data)).decode("ascii"))

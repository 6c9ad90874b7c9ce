"""Fetching images that clients give as http(s) URLs, with size, time, redirect and address limits.

Kiro only takes inline image bytes, so an `image_url` pointing at the web is downloaded here, once,
before the request is translated. Anything that is not a reasonably sized image is a clear 400.
Downloads use their own HTTP client, never Kiro's (its proxy settings and connection pool are Kiro's);
while ki2api listens off loopback they cannot reach loopback or private networks (`image_transport`).
"""

from __future__ import annotations

import base64
import dataclasses
import ssl
from urllib.parse import urlsplit

import httpx

from ..core.errors import UnsupportedImage
from ..core.model import ChatRequest, ImagePart, Message
from .image_transport import AddressRefused, PinnedTransport

MAX_IMAGE_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT = 15.0
MAX_REDIRECTS = 3
SUPPORTED_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def shown_url(url: str) -> str:
    """A URL as errors show it: no query or fragment (signed URLs carry secrets there), at most 100 chars."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "(an unparsable URL)"
    if parts.port:
        host = f"{host}:{parts.port}"
    shown = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0].split("#")[0]
    return shown if len(shown) <= 100 else shown[:97] + "..."


class ImageFetcher:
    """Downloads URL images with its own client; `transport` replaces the address-checking one (tests)."""

    def __init__(
        self,
        *,
        guard_private: bool,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        if transport is None:
            direct = httpx.AsyncHTTPTransport(verify=verify, trust_env=False, limits=httpx.Limits(max_connections=32))
            transport = PinnedTransport(inner=direct) if guard_private else direct
        self._http = httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch_images(self, request: ChatRequest) -> ChatRequest:
        """The same request with every URL-only image replaced by its downloaded bytes."""
        if not any(isinstance(p, ImagePart) and p.url and not p.data for m in request.messages for p in m.parts):
            return request
        messages = []
        for message in request.messages:
            parts = []
            for part in message.parts:
                if isinstance(part, ImagePart) and part.url and not part.data:
                    part = await self.fetch_image(part.url)
                parts.append(part)
            messages.append(Message(role=message.role, parts=tuple(parts)))
        return dataclasses.replace(request, messages=tuple(messages))

    async def fetch_image(self, url: str) -> ImagePart:
        shown = shown_url(url)
        if not url.startswith(("http://", "https://")):
            raise UnsupportedImage(f"Image URL {shown} is not http(s) or a data: URL.", param="image_url")
        try:
            request = self._http.build_request("GET", url, timeout=FETCH_TIMEOUT)
            for _ in range(MAX_REDIRECTS + 1):
                response = await self._http.send(request, stream=True)
                try:
                    if response.next_request is None:
                        return await _read_image(response, shown)
                    request = response.next_request  # a redirect: its body is never read
                finally:
                    await response.aclose()
        except AddressRefused as refused:
            raise UnsupportedImage(
                f"Image URL {shown} was not fetched: {refused}. ki2api does not download from this machine or "
                "its private network while it listens beyond loopback (set KI2API_IMAGE_FETCH_PRIVATE=1 to allow).",
                param="image_url",
            ) from refused
        except httpx.HTTPError as exc:
            raise UnsupportedImage(f"Could not download image {shown} ({type(exc).__name__}).") from exc
        raise UnsupportedImage(f"Could not download image {shown}: more than {MAX_REDIRECTS} redirects.")


async def _read_image(response: httpx.Response, shown: str) -> ImagePart:
    """The body of an image answer; anything else is refused on its headers alone."""
    if response.status_code != 200:
        raise UnsupportedImage(f"Could not download image {shown}: HTTP {response.status_code}.")
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in SUPPORTED_TYPES:
        raise UnsupportedImage(
            f"Image {shown} is {media_type or 'of unknown type'}; Kiro accepts PNG, JPEG, GIF and WebP."
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
        raise _too_large(shown)
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > MAX_IMAGE_BYTES:
            raise _too_large(shown)
    return ImagePart(media_type=media_type, data=base64.b64encode(bytes(data)).decode("ascii"))


def _too_large(shown: str) -> UnsupportedImage:
    return UnsupportedImage(f"Image {shown} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")

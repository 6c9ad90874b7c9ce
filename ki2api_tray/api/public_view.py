"""What unauthenticated routes (`/`, `/health` without the key) may show of the status.

Anyone who can reach the port can read them, so they carry no path under the user's home (it names the
user) and no text taken from requests (an image URL with a signed query once ended up in the last error).
The key holder gets the full status from `/health` with the key, and `ki2api-tray status` shows it all.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..state import Status

REQUEST_ERROR_HIDDEN = (
    "The last request failed. The details are shown to the key holder: `ki2api-tray status`, or /health "
    "with the API key."
)
_ANY_URL = re.compile(r"https?://[^\s'\"]+?(?=[\s'\"]|\)?\.?(?:\s|$))")
_URL = re.compile(r"(https?://[^\s?#'\"]*)[?#][^\s'\"]*")


def scrub(text: str, home: Path) -> str:
    """`text` with the home folder shown as `~` and URLs cut before their query string."""
    text = _URL.sub(r"\1", text)
    for form in {str(home), home.as_posix()}:
        if len(form) > 1:
            text = text.replace(form, "~")
    return text


def public_status(status: Status, home: Path | None = None) -> Status:
    home = home or Path.home()
    last_error = status.last_error
    if last_error and status.last_error_kind == "request":
        last_error = _ANY_URL.sub("(a URL from the request)", last_error)
    token = dataclasses.replace(
        status.token, source=scrub(status.token.source, home), detail=scrub(status.token.detail, home)
    )
    return dataclasses.replace(status, token=token, last_error=scrub(last_error, home))

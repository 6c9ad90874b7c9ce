"""The login given as KIRO_ACCESS_TOKEN / KIRO_REFRESH_TOKEN, and where its renewals are kept.

A renewal can replace the refresh token, and the access token lives about an hour, so a container restarted with
the tokens it was first given could not log in again. Every renewal of that login is therefore saved in ki2api's
state folder (`environment-login.json`, readable by its owner only; in Docker a volume), tagged with a fingerprint
of the environment's tokens it grew from. On start the saved login is used while the environment still holds that
same seed; different tokens in the environment replace it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..config import Settings
from .token_file import (
    TokenFileError,
    TokenRecord,
    format_js_iso,
    parse_timestamp,
    read_json_object,
    token_from_environment,
    write_json_atomically,
)

log = logging.getLogger(__name__)

FILE_NAME = "environment-login.json"


def login_file(settings: Settings) -> Path:
    return settings.app_paths.state_dir / FILE_NAME


def _seed_fingerprint(settings: Settings) -> str:
    seed = f"{settings.access_token or ''}\n{settings.refresh_token or ''}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def load_environment_login(settings: Settings) -> TokenRecord | None:
    """The environment's login: its last saved renewal when it grew from the same seed, else the seed itself."""
    seed = token_from_environment(settings.access_token, settings.refresh_token)
    if seed is None:
        return None
    path = login_file(settings)
    try:
        saved = read_json_object(path, attempts=1)
    except TokenFileError as exc:
        log.warning("ignoring the saved environment login: %s", exc)
        return seed
    if saved is None or saved.get("seed") != _seed_fingerprint(settings):
        return seed
    access, refresh = saved.get("accessToken"), saved.get("refreshToken")
    if not isinstance(access, str) or not isinstance(refresh, str) or not refresh:
        return seed
    arn = saved.get("profileArn")
    log.info("using the renewed login saved in %s for the tokens from the environment", path)
    return TokenRecord(
        access,
        refresh,
        expires_at=parse_timestamp(saved.get("expiresAt")),
        auth_kind="environment",
        profile_arn=arn if isinstance(arn, str) and arn else None,
        origin="environment",
    )


def save_environment_login(settings: Settings, record: TokenRecord) -> None:
    """Keep a renewed environment login for the next start; a failure only costs that convenience."""
    path = login_file(settings)
    data: dict[str, str] = {
        "seed": _seed_fingerprint(settings),
        "accessToken": record.access_token,
        "refreshToken": record.refresh_token,
    }
    if record.expires_at is not None:
        data["expiresAt"] = format_js_iso(record.expires_at)
    if record.profile_arn:
        data["profileArn"] = record.profile_arn
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, data)  # a new file is created readable by its owner only
    except OSError as exc:
        log.warning(
            "Could not keep the renewed Kiro token in %s (%s); a restart will need the tokens again",
            path,
            exc.strerror or type(exc).__name__,
        )

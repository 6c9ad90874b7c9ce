"""`ki2api-tray status`: where ki2api keeps its files and how the Kiro token looks, as plain text."""

from __future__ import annotations

from . import __version__
from .config import Settings
from .kiro.tokens import TokenStore


def status_report(settings: Settings) -> str:
    tokens = TokenStore(settings)
    tokens.reload()
    paths = settings.app_paths
    lines = [
        f"ki2api-tray {__version__}",
        f"API:         {settings.base_url}  (key: {'the public default' if settings.uses_default_key else 'custom'})",
        f"Config file: {paths.config_file}{'' if paths.config_file.exists() else '  (not created yet)'}",
        f"Log file:    {paths.log_file}",
        "",
        tokens.describe(),
    ]
    return "\n".join(lines)

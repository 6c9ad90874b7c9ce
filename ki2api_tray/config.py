"""Settings: one frozen value built from defaults < config file < environment < command line.

Nothing is read at import time. `load_settings()` takes the environment and the command-line
overrides as arguments, so tests and the tray build settings the same way.
"""

from __future__ import annotations

import codecs
import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import paths

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "ki2api-key-2024"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8989
DEFAULT_AUTH_URL = "https://prod.us-east-1.auth.desktop.kiro.dev"
# Where logins come from, in the order kiro-cli itself ranks them (kiro-protocol-2026.md §3, §5).
DEFAULT_LOGIN_SOURCES = "token_file,kiro_cli,api_key,environment"
LOGIN_SOURCES = frozenset(DEFAULT_LOGIN_SOURCES.split(","))
# The only regions a Kiro profile (and so the API) lives in (kiro-protocol-2026.md §1.2).
DEFAULT_PROFILE_REGIONS = "us-east-1,eu-central-1"
DEFAULT_UPDATE_URL = "https://api.github.com/repos/ki2api/ki2api-tray/releases/latest"


@dataclass(frozen=True)
class AccountSpec:
    """One entry of config.json `accounts`: a name and exactly one login (design.md §3)."""

    name: str
    token_file: Path | None = None
    kiro_api_key: str | None = field(default=None, repr=False)
    kiro_cli_db: Path | None = None

    @property
    def kind(self) -> str:
        return "token_file" if self.token_file else "api_key" if self.kiro_api_key else "kiro_cli"


_ACCOUNT_LOGINS = ("token_file", "kiro_api_key", "kiro_cli_db")


def parse_accounts(value: Any, source: str) -> tuple[AccountSpec, ...]:
    """config.json `accounts`, checked entry by entry; errors name the entry, never a key's value."""
    if not isinstance(value, list):
        raise ConfigError(f"{source}: accounts must be a list of objects")
    specs: list[AccountSpec] = []
    for index, entry in enumerate(value):
        where = f"{source}: accounts[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object with a name and one login")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where} needs a name")
        logins = [key for key in _ACCOUNT_LOGINS if entry.get(key)]
        if len(logins) != 1 or not isinstance(entry[logins[0]], str):
            raise ConfigError(f"{where} ({name}) needs exactly one of token_file, kiro_api_key or kiro_cli_db")
        if name.strip() in {spec.name for spec in specs}:
            raise ConfigError(f"{where}: the name {name!r} is used twice")
        key, raw = logins[0], entry[logins[0]]
        if key == "kiro_api_key":
            specs.append(AccountSpec(name.strip(), kiro_api_key=raw.strip()))
        elif key == "token_file":
            specs.append(AccountSpec(name.strip(), token_file=Path(raw).expanduser()))
        else:
            specs.append(AccountSpec(name.strip(), kiro_cli_db=Path(raw).expanduser()))
    return tuple(specs)


@dataclass(frozen=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    token_file: Path = field(default_factory=paths.default_token_file)
    profile_file: Path = field(default_factory=paths.kiro_profile_file)
    # Seed compatibility: tokens given directly in the environment (no file, no write-back).
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    # None means "derive": region from the profile ARN, URLs from the region.
    region: str | None = None
    runtime_url: str | None = None
    management_url: str | None = None
    auth_url: str = DEFAULT_AUTH_URL
    oidc_url: str | None = None
    # The AWS surface (q / codewhisperer) for logins the runtime host refuses; `{region}` may appear in it.
    q_url: str | None = None
    kiro_api_key: str | None = field(default=None, repr=False)
    kiro_cli_db: Path = field(default_factory=paths.default_kiro_cli_db)
    login_sources: str = DEFAULT_LOGIN_SOURCES
    kiro_cli_key: str | None = None  # which kiro-cli auth_kv row to use when several exist
    profile_arn: str | None = None  # manual override of the discovered profile ARN
    profile_regions: str = DEFAULT_PROFILE_REGIONS  # add us-gov-east-1 / us-gov-west-1 for GovCloud
    # §9.3: Builder ID logins either omit the ARN (OR, KAM-C, JW) or send Kiro's placeholder (KRS-Z, kiro-cli).
    builder_id_arn: str = "omit"
    # §9.2: "auto" lets social logins try the runtime host first; "aws_first" sends everyone to q first.
    host_order: str = "auto"
    # §7: how long a login rests after Kiro's "suspicious activity" 429.
    suspicious_cooldown: float = 900.0
    # Names that are no Claude model at all (a client's `gpt-4o`) are served by this Kiro model.
    default_model: str = "auto"
    # "nearest": an unoffered Claude name gets the nearest offered model of its family; "strict": a 404.
    model_fallback: str = "nearest"
    # Several Kiro accounts (issue #14, design.md §3): config.json only; see `AccountSpec`.
    accounts: tuple[AccountSpec, ...] = ()
    # "priority": the first healthy account; "round_robin": new conversations take turns.
    account_routing: str = "priority"
    # Pacing per account while there are several: a token bucket of this many requests per minute.
    account_requests_per_minute: float = 60.0
    # "auto" follows the OS locale; "en" or "zh" force a language in the tray.
    language: str = "auto"
    log_level: str = "INFO"
    max_body_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    idle_timeout: float = 300.0
    max_retries: int = 3
    # Browser origins and Host names allowed beyond the built-in ones (comma lists, `*` wildcards).
    allowed_origins: str = ""
    allowed_hosts: str = ""
    # Let image URLs reach loopback and private networks while listening off loopback.
    image_fetch_private: bool = False
    # Days of request history the usage store keeps (credits, models, errors; never message text); 0 keeps none.
    usage_days: int = 90
    # Tray notifications about credits, the login and the account (the tray menu switches this).
    notifications: bool = True
    # Accept the public default key while listening off loopback. Only for a port nothing but this machine can
    # reach, such as a container published on 127.0.0.1 only (docker-compose.yml sets it).
    allow_default_key_off_loopback: bool = False
    # Ask GitHub once a day whether a newer release exists (only tells; never downloads).
    update_check: bool = True
    update_url: str = DEFAULT_UPDATE_URL
    app_paths: paths.AppPaths = field(default_factory=paths.app_paths)

    @property
    def uses_default_key(self) -> bool:
        return self.api_key == DEFAULT_API_KEY

    @property
    def on_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def default_key_off_loopback(self) -> bool:
        """Listening beyond loopback with the public default key, which only the explicit setting allows."""
        return self.uses_default_key and not self.on_loopback and self.allow_default_key_off_loopback

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    @property
    def allowed_regions(self) -> tuple[str, ...]:
        return tuple(r.strip() for r in self.profile_regions.split(",") if r.strip()) or ("us-east-1",)

    @property
    def source_order(self) -> tuple[str, ...]:
        """The login sources to try, in order; unknown names are dropped (load_settings refuses them)."""
        return tuple(s for s in (p.strip() for p in self.login_sources.split(",")) if s in LOGIN_SOURCES)

    def region_for(self, profile_arn: str | None) -> str:
        """The API region: explicit setting, else the profile ARN's region (the 4th field) when it is a
        profile region, else us-east-1. Never the SSO region (kiro-protocol-2026.md §1.2)."""
        if self.region:
            return self.region
        if profile_arn:
            parts = profile_arn.split(":")
            if len(parts) > 3 and parts[3] in self.allowed_regions:
                return parts[3]
        return "us-east-1"

    def q_base(self, region: str) -> str:
        """The AWS surface: codewhisperer.us-east-1 resolves only for us-east-1, every other region is q.{r}."""
        if self.q_url:
            return self.q_url.replace("{region}", region).rstrip("/")
        if region == "us-east-1":
            return "https://codewhisperer.us-east-1.amazonaws.com"
        return f"https://q.{region}.amazonaws.com"

    def runtime_base(self, region: str) -> str:
        return (self.runtime_url or f"https://runtime.{region}.kiro.dev").rstrip("/")

    def management_base(self, region: str) -> str:
        return (self.management_url or f"https://management.{region}.kiro.dev").rstrip("/")

    def oidc_base(self, region: str) -> str:
        return (self.oidc_url or f"https://oidc.{region}.amazonaws.com").rstrip("/")


# Environment variable -> settings field. The names are a public contract (design.md §3).
ENVIRONMENT = {
    "API_KEY": "api_key",
    "KI2API_HOST": "host",
    "KI2API_PORT": "port",
    "KIRO_TOKEN_FILE": "token_file",
    "KIRO_PROFILE_FILE": "profile_file",
    "KIRO_ACCESS_TOKEN": "access_token",
    "KIRO_REFRESH_TOKEN": "refresh_token",
    "KIRO_REGION": "region",
    "KIRO_RUNTIME_URL": "runtime_url",
    "KIRO_MANAGEMENT_URL": "management_url",
    "KIRO_AUTH_URL": "auth_url",
    "KIRO_OIDC_URL": "oidc_url",
    "KIRO_Q_URL": "q_url",
    "KIRO_API_KEY": "kiro_api_key",
    "KIRO_CLI_DB": "kiro_cli_db",
    "KIRO_PROFILE_ARN": "profile_arn",
    "KI2API_LOGIN_SOURCES": "login_sources",
    "KI2API_DEFAULT_MODEL": "default_model",
    "KI2API_MODEL_FALLBACK": "model_fallback",
    "KI2API_LANGUAGE": "language",
    "KI2API_LOG_LEVEL": "log_level",
    "KI2API_MAX_BODY_BYTES": "max_body_bytes",
    "KI2API_CONNECT_TIMEOUT": "connect_timeout",
    "KI2API_FIRST_BYTE_TIMEOUT": "first_byte_timeout",
    "KI2API_IDLE_TIMEOUT": "idle_timeout",
    "KI2API_MAX_RETRIES": "max_retries",
    "KI2API_ALLOWED_ORIGINS": "allowed_origins",
    "KI2API_ALLOWED_HOSTS": "allowed_hosts",
    "KI2API_IMAGE_FETCH_PRIVATE": "image_fetch_private",
    "KI2API_USAGE_DAYS": "usage_days",
    "KI2API_NOTIFICATIONS": "notifications",
    "KI2API_ALLOW_DEFAULT_KEY_OFF_LOOPBACK": "allow_default_key_off_loopback",
    "KI2API_UPDATE_CHECK": "update_check",
    "KI2API_UPDATE_URL": "update_url",
}

# Keys a person may put in config.json: every field except the derived paths.
FILE_KEYS = frozenset(f.name for f in fields(Settings)) - {"app_paths"}
# Field annotations are strings (postponed evaluation); the first word is the type to convert to.
_FIELD_TYPES = {f.name: str(f.type).split(" ")[0] for f in fields(Settings)}
_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the source, key and value."""


def _convert(name: str, value: Any, source: str) -> Any:
    """Turn a raw value into the field's type, with an error that says where the bad value came from."""
    kind = _FIELD_TYPES[name]
    if name == "accounts":
        return parse_accounts(value or [], source)
    if value is None or value == "":
        return _DEFAULTS.get(name)
    if kind == "str" and isinstance(value, list):  # config.json may hold a list for a comma list
        value = ",".join(str(item) for item in value)
    try:
        if kind == "bool":
            return _boolean(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path":
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError) as exc:
        wanted = {"int": "a whole number", "float": "a number", "bool": "1 or 0"}.get(kind, f"a {kind}")
        raise ConfigError(f"{source}: {name} must be {wanted}, got {value!r}") from exc


def read_config_file(path: Path) -> dict[str, Any]:
    """The config file's settings; a missing file is empty, a broken one is an error worth showing."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        text = _decode_config(raw)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: save it as UTF-8 (Notepad: Save as > Encoding)") from exc
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON (line {exc.lineno}): fix or delete it") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        log.warning("ignoring unknown keys in %s: %s", path, ", ".join(unknown))
    return {k: v for k, v in data.items() if k in FILE_KEYS}


def _decode_config(raw: bytes) -> str:
    """Text as Windows editors save it: Notepad's "UTF-8 with BOM" and "Unicode" (UTF-16) included."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Build settings: defaults < config.json < environment < `overrides` (the command line)."""
    app = paths.app_paths(environ)
    values: dict[str, Any] = {
        "app_paths": app,
        "token_file": paths.default_token_file(environ),
        "profile_file": paths.kiro_profile_file(environ),
        "kiro_cli_db": paths.default_kiro_cli_db(environ),
    }
    for key, raw in read_config_file(app.config_file).items():
        values[key] = _convert(key, raw, str(app.config_file))
    for var, key in ENVIRONMENT.items():
        if var in environ and environ[var] != "":
            values[key] = _convert(key, environ[var], f"environment variable {var}")
    for key, raw in (overrides or {}).items():
        if raw is not None:
            values[key] = _convert(key, raw, "command line")
    settings = replace(Settings(), **values)
    if settings.usage_days < 0:
        raise ConfigError(f"usage_days must be 0 (keep no history) or more, got {settings.usage_days}")
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {settings.port}")
    unknown = [s.strip() for s in settings.login_sources.split(",") if s.strip() and s.strip() not in LOGIN_SOURCES]
    if unknown or not settings.source_order:
        raise ConfigError(
            f"login_sources must list some of {', '.join(sorted(LOGIN_SOURCES))}, got {settings.login_sources!r}"
        )
    if settings.builder_id_arn not in ("omit", "placeholder"):
        raise ConfigError(f"builder_id_arn must be omit or placeholder, got {settings.builder_id_arn!r}")
    if settings.account_routing not in ("priority", "round_robin"):
        raise ConfigError(f"account_routing must be priority or round_robin, got {settings.account_routing!r}")
    if settings.account_requests_per_minute <= 0:
        raise ConfigError("account_requests_per_minute must be above 0")
    if settings.host_order not in ("auto", "aws_first"):
        raise ConfigError(f"host_order must be auto or aws_first, got {settings.host_order!r}")
    if settings.model_fallback not in ("nearest", "strict"):
        raise ConfigError(f"KI2API_MODEL_FALLBACK must be nearest or strict, got {settings.model_fallback!r}")
    if not settings.default_model.strip():
        raise ConfigError("KI2API_DEFAULT_MODEL must name a model, e.g. auto")
    return settings


def write_default_config(path: Path) -> None:
    """Create a starter config.json (for "Open config") without overwriting an existing one."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    starter = {"port": DEFAULT_PORT, "api_key": DEFAULT_API_KEY, "language": "auto"}
    path.write_text(json.dumps(starter, indent=2) + "\n", encoding="utf-8")


def set_config_value(path: Path, key: str, value: Any) -> None:
    """Change one key of config.json (created if missing), keeping every other key; written atomically."""
    if key not in FILE_KEYS:
        raise ValueError(f"{key} is not a setting")
    read_config_file(path)  # a broken file is reported, not overwritten
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        raw = {}
    data: dict[str, Any] = raw  # unknown keys stay: they may belong to another version of ki2api
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)

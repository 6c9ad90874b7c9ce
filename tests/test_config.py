"""Settings: defaults < config.json < environment < command line, and errors that say where a bad value is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ki2api_tray.config import DEFAULT_API_KEY, ConfigError, is_loopback, load_settings


def write_config(home: Path, data: object) -> Path:
    path = home / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_defaults_are_the_seed_contract(isolated_home: Path) -> None:
    settings = load_settings(environ={"HOME": str(isolated_home)})

    assert (settings.host, settings.port, settings.api_key) == ("127.0.0.1", 8989, DEFAULT_API_KEY)
    assert settings.token_file == isolated_home / ".aws" / "sso" / "cache" / "kiro-auth-token.json"
    assert settings.base_url == "http://127.0.0.1:8989/v1"
    assert settings.runtime_base("us-east-1") == "https://runtime.us-east-1.kiro.dev"
    assert settings.management_base("eu-central-1") == "https://management.eu-central-1.kiro.dev"


def test_each_layer_overrides_the_one_before(tmp_path: Path) -> None:
    home = tmp_path / "portable"
    write_config(home, {"port": 9000, "api_key": "from-file", "language": "zh", "host": "127.0.0.2"})
    environ = {"KI2API_HOME": str(home), "KI2API_PORT": "9100", "API_KEY": "from-env"}

    settings = load_settings({"port": 9200}, environ=environ)

    assert settings.port == 9200  # command line
    assert settings.api_key == "from-env"  # environment
    assert (settings.language, settings.host) == ("zh", "127.0.0.2")  # file
    assert settings.app_paths.config_file == home / "config.json"
    assert settings.app_paths.log_dir == home / "logs"


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"KI2API_PORT": "eighty"}, "environment variable KI2API_PORT: port must be a whole number, got 'eighty'"),
        ({"KI2API_PORT": "70000"}, "port must be between 0 and 65535"),
        ({"KI2API_FIRST_BYTE_TIMEOUT": "soon"}, "first_byte_timeout"),
    ],
)
def test_bad_values_name_their_source(tmp_path: Path, environ: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(environ={"KI2API_HOME": str(tmp_path), **environ})


def test_broken_config_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "{not json")

    with pytest.raises(ConfigError, match=f"{path} is not valid JSON"):
        load_settings(environ={"KI2API_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16"], ids=["UTF-8", "Notepad UTF-8 with BOM", "Notepad Unicode"]
)
def test_config_file_as_windows_editors_save_it(tmp_path: Path, encoding: str) -> None:
    (tmp_path / "config.json").write_bytes(json.dumps({"port": 9002, "api_key": "sécret-密钥"}).encode(encoding))

    settings = load_settings(environ={"KI2API_HOME": str(tmp_path)})

    assert (settings.port, settings.api_key) == (9002, "sécret-密钥")


def test_config_file_in_a_legacy_code_page_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes('{"api_key": "sécret"}'.encode("cp1252"))

    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_settings(environ={"KI2API_HOME": str(tmp_path)})


def test_unknown_config_keys_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_config(tmp_path, {"port": 9001, "colour": "blue"})

    assert load_settings(environ={"KI2API_HOME": str(tmp_path)}).port == 9001
    assert "colour" in caplog.text


def test_repr_never_shows_key_or_tokens(tmp_path: Path) -> None:
    environ = {"KI2API_HOME": str(tmp_path), "API_KEY": "sekrit-key", "KIRO_ACCESS_TOKEN": "aoaSECRET"}

    text = repr(load_settings(environ=environ))

    assert "sekrit-key" not in text and "aoaSECRET" not in text


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.8.8.8", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("192.168.1.2", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_region_comes_from_the_profile_arn(tmp_path: Path) -> None:
    settings = load_settings(environ={"KI2API_HOME": str(tmp_path)})

    assert settings.region_for("arn:aws:codewhisperer:eu-central-1:123:profile/X") == "eu-central-1"
    assert settings.region_for(None) == "us-east-1"
    assert (
        load_settings(environ={"KI2API_HOME": str(tmp_path), "KIRO_REGION": "eu-central-1"}).region_for(
            "arn:aws:codewhisperer:us-east-1:1:profile/X"
        )
        == "eu-central-1"
    )

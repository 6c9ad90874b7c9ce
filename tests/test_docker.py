"""The Docker image and docker-compose.yml, checked without a Docker engine.

This machine has none, so the tests read the Dockerfile's ENV, ENTRYPOINT and CMD and the compose file's
environment, ports and volumes, and run the image's command line with that same environment in a subprocess.
Paths inside the image (/home/ki2api, the /data volume) become folders under tmp_path. The real image is built with
Docker's own tooling in CI (.github/workflows/docker.yml). Tests bind loopback only: the serving run replaces the
image's `--host 0.0.0.0 --port 8989` with 127.0.0.1 and a free port, and what 0.0.0.0 changes (the key check, the
Host guard) is checked on the settings the unchanged command line produces.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import yaml

from ki2api_tray.api.guard import GuardPolicy
from ki2api_tray.app import exposure_refusal, parse_args
from ki2api_tray.config import load_settings
from tests.fake_kiro import FakeKiro
from tests.fake_kiro.accounts import Account

ROOT = Path(__file__).resolve().parent.parent
KIRO_URLS = ("KIRO_RUNTIME_URL", "KIRO_MANAGEMENT_URL", "KIRO_AUTH_URL", "KIRO_OIDC_URL", "KIRO_Q_URL")


def dockerfile() -> tuple[dict[str, str], list[str], list[str]]:
    """ENV, ENTRYPOINT and CMD of the Dockerfile (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    command: list[str] = []
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            env |= dict(pair.split("=", 1) for pair in shlex.split(rest))
        elif instruction == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif instruction == "CMD":
            command = json.loads(rest)
    return env, entrypoint, command


def compose_service() -> dict[str, object]:
    service: dict[str, object] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["ki2api"]
    return service


def compose_environment(host: Mapping[str, str]) -> dict[str, str]:
    """The service's environment as compose fills it in from the host's variables (`${NAME:-default}`)."""

    def fill(match: re.Match[str]) -> str:
        return host.get(match.group(1)) or (match.group(2) or "")

    environment = compose_service()["environment"]
    assert isinstance(environment, dict)
    return {k: re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", fill, str(v)) for k, v in environment.items()}


def container_env(tmp_path: Path, host: Mapping[str, str], fake: FakeKiro, *, compose: bool) -> dict[str, str]:
    """What the process inside the container sees, with the image's paths moved under tmp_path."""
    image_env, _, _ = dockerfile()
    moved = {"/home/ki2api": str(tmp_path / "home"), "/data": str(tmp_path / "data")}
    env = {key: moved.get(value, value) for key, value in image_env.items()}
    if compose:
        env |= compose_environment(host)
    env |= {name: fake.base_url for name in KIRO_URLS}  # the container's "internet" is the fake Kiro
    env["KI2API_UPDATE_CHECK"] = "0"  # and it has no GitHub to ask
    keep = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "PYTHONPATH": str(ROOT), **env}


def settings_for(env: Mapping[str, str], argv: list[str]) -> tuple[str, GuardPolicy, bool]:
    args = parse_args(argv)
    settings = load_settings({"host": args.host, "port": args.port}, environ=env)
    return exposure_refusal(settings), GuardPolicy.from_settings(settings), settings.default_key_off_loopback


def test_compose_publishes_on_loopback_only_and_keeps_state_in_a_volume() -> None:
    image_env, entrypoint, command = dockerfile()
    service = compose_service()
    assert entrypoint == ["ki2api-tray"] and command[:1] == ["serve"]
    assert service["ports"] == ["127.0.0.1:8989:8989"]
    volumes = service["volumes"]
    assert isinstance(volumes, list)
    assert f"ki2api-data:{image_env['KI2API_HOME']}" in volumes


def test_only_the_compose_setting_allows_the_default_key_on_all_interfaces(tmp_path: Path, fake_kiro: FakeKiro) -> None:
    _, _, command = dockerfile()
    host = {"KIRO_ACCESS_TOKEN": "aoa-x", "KIRO_REFRESH_TOKEN": "aor-x"}
    refusal, _, _ = settings_for(container_env(tmp_path, host, fake_kiro, compose=False), command)
    assert "refusing to listen on 0.0.0.0" in refusal  # `docker run -p 8989:8989` without API_KEY

    env = container_env(tmp_path, host, fake_kiro, compose=True)
    refusal, guard, default_key_off_loopback = settings_for(env, command)
    assert refusal == "" and default_key_off_loopback
    # Reachable only through the host's loopback, so it answers only loopback names (no DNS rebinding).
    assert guard.host_allowed("127.0.0.1:8989") and guard.host_allowed("localhost:8989")
    assert not guard.host_allowed("rebound.example.com:8989")

    # A key of one's own: the setting changes nothing, any Host name works as before.
    refusal, guard, default_key_off_loopback = settings_for({**env, "API_KEY": "a-secret-of-mine"}, command)
    assert refusal == "" and not default_key_off_loopback and guard.host_allowed("ki2api:8989")


def serve_once(env: dict[str, str], command: list[str], port: int, chats: int, account: Account, fake: FakeKiro) -> str:
    argv = list(command)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    process = subprocess.Popen(
        [sys.executable, "-m", "ki2api_tray", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=1).json()["status"] == "running":
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        for n in range(chats):
            if n == 1:
                fake.accounts.expire_access_tokens(account)  # an hour later: only a refresh helps
            reply = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": f"docker {n}"}]},
                headers={"Authorization": "Bearer ki2api-key-2024"},
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == f"Echo: docker {n}"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output
    return output


def test_compose_with_only_the_two_tokens_serves_and_a_restart_needs_no_new_ones(
    tmp_path: Path, fake_kiro: FakeKiro
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    account = fake_kiro.accounts.add_social()
    seed = {"KIRO_ACCESS_TOKEN": account.access_token, "KIRO_REFRESH_TOKEN": account.refresh_token}
    env = container_env(tmp_path, seed, fake_kiro, compose=True)
    _, _, command = dockerfile()

    first = serve_once(env, command, port, chats=2, account=account, fake=fake_kiro)
    assert fake_kiro.accounts.social_refreshes == 1  # the second chat renewed the expired token
    assert seed["KIRO_REFRESH_TOKEN"] != account.refresh_token  # ...and the seed's refresh token died with it
    saved = tmp_path / "data" / "state" / "environment-login.json"
    assert saved.is_file()

    # Restart with the same environment: the seed is dead, the login kept in the volume is not.
    second = serve_once(env, command, port, chats=1, account=account, fake=fake_kiro)
    assert fake_kiro.accounts.social_refreshes == 1
    for output in (first, second):
        assert seed["KIRO_ACCESS_TOKEN"] not in output and seed["KIRO_REFRESH_TOKEN"] not in output
        assert account.access_token not in output and account.refresh_token not in output

"""`ki2api-tray` as a person runs it: a real process, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures_kiro import KiroEnv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ki2api_tray", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )


def wait_healthy(url: str, process: subprocess.Popen[str], deadline: float = 20) -> dict[str, object]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert process.poll() is None, process.communicate()
        try:
            return httpx.get(f"{url}/health", timeout=1).json()  # type: ignore[no-any-return]
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("the server never became healthy")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_then_stops_cleanly_on_signal(kiro_env: KiroEnv, stop_signal: signal.Signals) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ki2api_tray", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}", process)
        assert health["status"] == "running"
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "cli"}]},
            headers={"Authorization": "Bearer ki2api-key-2024"},
            timeout=10,
        )
        assert reply.json()["choices"][0]["message"]["content"] == "Echo: cli"

        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}/v1" in stderr
    assert kiro_env.account.access_token not in stderr


def test_serve_refuses_public_host_with_default_key(kiro_env: KiroEnv) -> None:
    result = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()))

    assert result.returncode == 2
    assert "API_KEY" in result.stderr and "refusing" in result.stderr


def test_quit_then_relaunch_on_the_same_port_right_after_requests(kiro_env: KiroEnv) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for _ in range(2):  # the first run, then the relaunch
        process = subprocess.Popen(
            [sys.executable, "-m", "ki2api_tray", "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        try:
            wait_healthy(url, process)
            with httpx.Client(trust_env=False, timeout=5) as client:  # keep-alive connections stay open
                for _ in range(3):
                    assert client.get(f"{url}/health").status_code == 200
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=15) == 0, process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
        # What Windows' SO_EXCLUSIVEADDRUSE would see: no connection of the old process still holds the port.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_serve_reports_port_in_use(kiro_env: KiroEnv) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("serve", "--port", str(taken.getsockname()[1]))

    assert result.returncode == 1
    assert "in use" in result.stderr


def test_status_describes_token_without_secrets(kiro_env: KiroEnv) -> None:
    result = run_cli("--port", str(free_port()), "status")

    assert result.returncode == 2  # the login is fine, but no server is running
    assert "Server:      not running" in result.stdout
    assert "Quota:       437.25 of 550 left · resets " in result.stdout  # asked Kiro itself, with the year
    assert str(kiro_env.token_file) in result.stdout
    assert "social" in result.stdout.lower()
    assert kiro_env.account.access_token not in result.stdout
    assert kiro_env.account.refresh_token not in result.stdout


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("ki2api-tray ")
    help_text = run_cli("--help").stdout
    assert "serve" in help_text and "status" in help_text
    serve_help = run_cli("serve", "--help").stdout
    assert "--host HOST" in serve_help and "--port PORT" in serve_help
    assert "SERVE_HOST" not in serve_help and "SERVE_PORT" not in serve_help


def test_status_with_a_running_server_and_as_json(kiro_env: KiroEnv) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ki2api_tray", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        text = run_cli("--port", str(port), "status")
        assert text.returncode == 0, text.stdout + text.stderr
        assert f"Server:      running at http://127.0.0.1:{port}" in text.stdout
        assert "API key:     ki2api-key-2024 (the public default)" in text.stdout
        report = run_cli("--port", str(port), "status", "--json")
        assert report.returncode == 0
        body = json.loads(report.stdout)
        assert body["server"]["running"] is True and body["exit_code"] == 0
        assert body["login"]["usable"] is True and body["login"]["auth_kind"] == "social"
        assert body["quota"]["limit"] == 550 and body["quota"]["resets_at"]
        assert body["api"]["key"] == "ki2api-key-2024"
        assert kiro_env.account.access_token not in report.stdout + text.stdout
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


def test_status_without_a_login_exits_1_and_hides_a_custom_key(isolated_home: Path) -> None:
    env = {**os.environ, "API_KEY": "my-secret-key-123"}
    result = subprocess.run(
        [sys.executable, "-m", "ki2api_tray", "--port", str(free_port()), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["login"] == {**body["login"], "usable": False, "health": "missing"}
    assert body["api"] == {**body["api"], "key": None, "key_is_default": False}
    assert "my-secret-key-123" not in result.stdout


def test_bad_config_file_is_reported(isolated_home: Path) -> None:
    config = Path(os.environ["KI2API_HOME"]) / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("{broken")

    result = run_cli("status")

    assert result.returncode == 2
    assert "config.json" in result.stderr and "not valid JSON" in result.stderr

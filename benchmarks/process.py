"""The processes a benchmark run starts: the paced fake Kiro and the real ki2api server, each on its own.

ki2api runs as `python -m ki2api_tray serve` in a separate process, so the CPU seconds and memory
measured (with psutil) are its own, not the load generator's. Both get a throwaway HOME and KI2API_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import psutil

from ki2api_tray.config import DEFAULT_API_KEY

from .clients import BenchmarkError

REPO_ROOT = Path(__file__).resolve().parent.parent
KIRO_URL_VARIABLES = ("KIRO_RUNTIME_URL", "KIRO_MANAGEMENT_URL", "KIRO_AUTH_URL", "KIRO_OIDC_URL")
START_TIMEOUT = 20.0
MB = 1024 * 1024


def _is_leaky(variable: str) -> bool:
    """Settings from the developer's shell that would point ki2api elsewhere (a proxy, a real token, a key)."""
    name = variable.upper()
    return name.startswith(("KIRO_", "KI2API_")) or name.endswith("_PROXY") or name == "API_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeKiroProcess:
    """`python -m benchmarks.paced_kiro` in a child process; it ends when we close its stdin."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.paced_kiro", str(home)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise BenchmarkError(f"the fake Kiro did not start (it printed {line!r})")
        self.url = f"http://127.0.0.1:{line}"

    def login(self) -> tuple[str, str]:
        """The access token and profile ARN the fake wrote for its account (for the direct client)."""
        data = json.loads((self.home / ".aws" / "sso" / "cache" / "kiro-auth-token.json").read_text())
        return str(data["accessToken"]), str(data["profileArn"])

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class ServerProcess:
    """The real ki2api server (`python -m ki2api_tray serve`) pointed at the fake Kiro.

    `cold_start` is the time from spawning the process to the first /health that says "running", and
    `cold_start_cpu` the CPU time the process used until then.
    """

    def __init__(
        self,
        home: Path,
        state_dir: Path,
        kiro_url: str,
        log: IO[bytes],
        *,
        command: tuple[str, ...] = ("serve",),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {key: value for key, value in os.environ.items() if not _is_leaky(key)}
        env |= {"HOME": str(home), "USERPROFILE": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        env |= {"KI2API_HOME": str(state_dir), "API_KEY": DEFAULT_API_KEY, "NO_PROXY": "*", "KI2API_UPDATE_CHECK": "0"}
        env |= {variable: kiro_url for variable in KIRO_URL_VARIABLES}
        env |= {"KI2API_PORT": str(port), **(extra_env or {})}
        started = time.perf_counter()
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "ki2api_tray", *command],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        self.process = psutil.Process(self._popen.pid)
        try:
            self._wait_running()
        except BaseException:
            self.stop()
            raise
        self.cold_start = time.perf_counter() - started
        # CPU seconds the process needed to get there: on a busy machine the wall time above mostly measures
        # waiting for a core, this does not.
        self.cold_start_cpu = self.cpu_seconds()

    def _wait_running(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(trust_env=False, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self._popen.poll() is not None:
                    raise BenchmarkError(f"ki2api exited with code {self._popen.returncode} while starting")
                try:
                    response = http.get(f"{self.url}/health")
                    if response.status_code == 200 and response.json().get("status") == "running":
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(0.005)
        raise BenchmarkError(f"ki2api did not report running within {START_TIMEOUT:g} s")

    def rss_mb(self) -> float:
        return float(self.process.memory_info().rss) / MB

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole ki2api process (all its threads) so far."""
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(10)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()


class VirtualScreen:
    """An Xvfb display (and a trayer tray host when installed) for measuring the tray process."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        self._processes = [
            subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "640x480x24", "-nolisten", "tcp", "-noreset"],
                pass_fds=(write_end,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        os.close(write_end)
        with os.fdopen(read_end) as announced:
            self.display = ":" + announced.readline().strip()
        if shutil.which("trayer"):
            self._processes.append(
                subprocess.Popen(
                    ["trayer", "--edge", "top", "--SetDockType", "true"],
                    env={**os.environ, "DISPLAY": self.display},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(0.5)  # let the tray host claim the system-tray selection before an icon docks

    @staticmethod
    def available() -> bool:
        return sys.platform.startswith("linux") and shutil.which("Xvfb") is not None

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
            process.wait(10)

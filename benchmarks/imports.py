"""What ki2api imports when it runs, and what each import costs: `python -m benchmarks.imports`.

Runs the app from this source tree with `python -X importtime` through every path a user takes, each in its
own process with a throwaway HOME and KI2API_HOME:

- `--selftest` without a display, and again on an Xvfb screen (which loads pystray's X11 backend);
- `serve` against the paced fake Kiro, with every route a client uses (OpenAI and Anthropic, stream and not,
  models, token counting, the status page, a bad request and a wrong key);
- the tray process on an Xvfb screen until its server reports running and its start-up calls are done;
- `status`.

It writes the union of imported module names, one a line (`--out`, default build/imports.txt), which
`build_scripts/bundle_report.py --imported` compares with a frozen build, and prints the import-time profile
of `serve` up to a healthy server (self and cumulative time of the slowest top-level imports).
`--python` picks the interpreter (e.g. the clean release venv's), which must have the app's dependencies.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ki2api_tray.config import DEFAULT_API_KEY

from .process import KIRO_URL_VARIABLES, REPO_ROOT, FakeKiroProcess, VirtualScreen, _is_leaky, free_port

# `import time:       123 |       4567 |     package.module` (self and cumulative microseconds, nesting by spaces)
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")
KEY_HEADERS = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
# `-X importtime` misses imports made through importlib.import_module (uvicorn and anyio load modules by name
# that way), so the app runs under this wrapper, which also writes sys.modules out every 0.2 s and at exit.
WRAPPER = """
import atexit, runpy, sys, threading, time
out = sys.argv.pop(1)
def dump():
    names = list(sys.modules)
    with open(out, "w") as f:
        f.write("\\n".join(names))
def keep_dumping():
    while True:
        time.sleep(0.2)
        dump()
threading.Thread(target=keep_dumping, daemon=True).start()
atexit.register(dump)
sys.argv[0] = "ki2api_tray"
runpy.run_module("ki2api_tray", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Import:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(text: str) -> list[Import]:
    found = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            self_us, cumulative_us, indent, module = match.groups()
            found.append(Import(module, int(self_us), int(cumulative_us), (len(indent) - 1) // 2))
    return found


class Scenario:
    """One run of the app with -X importtime; stderr goes to a file so a long run cannot fill a pipe."""

    def __init__(self, python: str, root: Path, name: str, args: list[str], extra_env: dict[str, str]) -> None:
        self.name = name
        self.stderr_path = root / f"{name}.stderr"
        self.modules_path = root / f"{name}.modules"
        self.port = free_port()
        home = root / f"{name}-home"
        home.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not _is_leaky(key)}
        env.pop("PYSTRAY_BACKEND", None)
        env.pop("DISPLAY", None)
        env |= {"HOME": str(home), "KI2API_HOME": str(root / f"{name}-state"), "NO_PROXY": "*"}
        # The update check runs (its imports count) against the discard port: GitHub is never asked.
        env["KI2API_UPDATE_URL"] = "http://127.0.0.1:9/"
        env |= {"KI2API_PORT": str(self.port), "PYTHONPATH": str(REPO_ROOT), **extra_env}
        self._stderr = self.stderr_path.open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [python, "-X", "importtime", "-c", WRAPPER, str(self.modules_path), *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_running(self, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name}: exited with {self.process.returncode}; see {self.stderr_path}")
                try:
                    if http.get(f"{self.url}/health").json().get("status") == "running":
                        return time.perf_counter() - self.started
                except (httpx.TransportError, ValueError):
                    pass
                time.sleep(0.005)
        raise RuntimeError(f"{self.name}: no running /health within {timeout:g} s")

    def finish(self, timeout: float = 60.0, *, stop: bool = True) -> set[str]:
        """Stop the app (or, with stop=False, wait for it to exit by itself); the modules it imported."""
        if stop and self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()
        timed = {i.module for i in parse_importtime(self.stderr_path.read_text(errors="replace"))}
        return timed | set(self.modules_path.read_text(encoding="utf-8").split())


def exercise_api(url: str) -> None:
    """Every route a client uses, so modules imported per request show up too."""
    chat = {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "hello"}]}
    messages = {"model": "claude-sonnet-4", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=url, trust_env=False, timeout=30.0, headers=KEY_HEADERS) as http:
        calls: list[Callable[[], httpx.Response]] = [
            lambda: http.get("/health"),
            lambda: http.get("/"),
            lambda: http.get("/v1/models"),
            lambda: http.post("/v1/chat/completions", json=chat),
            lambda: http.post("/v1/chat/completions", json={**chat, "stream": True}),
            lambda: http.post("/v1/messages", json=messages),
            lambda: http.post("/v1/messages", json={**messages, "stream": True}),
            lambda: http.post("/v1/messages/count_tokens", json=messages),
            lambda: http.post("/v1/responses", json={"model": "claude-sonnet-4", "input": "hi"}),
            lambda: http.post("/v1/chat/completions", json={"messages": "not a list"}),
            lambda: http.get("/v1/models", headers={"Authorization": "Bearer wrong"}),
        ]
        for call in calls:
            call().read()


@contextmanager
def screen() -> Iterator[str | None]:
    if not VirtualScreen.available():
        yield None
        return
    virtual = VirtualScreen()
    try:
        yield virtual.display
    finally:
        virtual.stop()


def trace(python: str, root: Path) -> tuple[dict[str, set[str]], float, list[Import]]:
    """Run every scenario: the imports of each, serve's time from spawn to a running /health, and the imports
    serve made up to that moment (the start-up profile)."""
    runs: dict[str, set[str]] = {}

    def once(name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        runs[name] = Scenario(python, root, name, args, env or {}).finish(stop=False)

    once("selftest", ["--selftest"])
    once("status", ["status"])
    fake = FakeKiroProcess(root / "fake-home")
    try:
        kiro = {name: fake.url for name in KIRO_URL_VARIABLES}
        kiro["KIRO_TOKEN_FILE"] = str(root / "fake-home" / ".aws" / "sso" / "cache" / "kiro-auth-token.json")
        serve = Scenario(python, root, "serve", ["serve"], kiro)
        healthy = serve.wait_running()
        at_start = parse_importtime(serve.stderr_path.read_text(errors="replace"))
        exercise_api(serve.url)
        runs["serve"] = serve.finish()
        with screen() as display:
            if display is None:
                print("[imports] no Xvfb: the tray scenarios are skipped", file=sys.stderr)
            else:
                once("selftest-display", ["--selftest"], {"DISPLAY": display})
                tray = Scenario(python, root, "tray", [], {**kiro, "DISPLAY": display})
                tray.wait_running()
                time.sleep(2.5)  # the start-up quota call and the first menu refresh
                runs["tray"] = tray.finish()
    finally:
        fake.stop()
    return runs, healthy, at_start


def profile(imports: list[Import], top: int) -> list[str]:
    """The slowest top-level imports by cumulative time, and the slowest single modules by self time."""
    lines = ["top-level imports by cumulative time (ms):"]
    roots = sorted((i for i in imports if i.depth == 0), key=lambda i: i.cumulative_us, reverse=True)
    lines += [f"  {i.cumulative_us / 1000:8.1f}  {i.module}" for i in roots[:top]]
    lines.append("modules by self time (ms):")
    lines += [f"  {i.self_us / 1000:8.1f}  {i.module}" for i in sorted(imports, key=lambda i: -i.self_us)[:top]]
    total = sum(i.self_us for i in imports) / 1000
    lines.append(f"all {len(imports)} imports: {total:.0f} ms")
    return lines


def startup_profile(python: str, source: Path, repeats: int, top: int) -> list[str]:
    """What importing the app (`ki2api_tray.app`, everything `serve` loads before it can start) costs, per package.

    Each module's self time is the fastest of `repeats` fresh processes: on a busy machine single runs mostly
    measure waiting for a core, the minimum comes closest to the import's own cost.
    """
    best: dict[str, int] = {}
    env = {key: value for key, value in os.environ.items() if not _is_leaky(key)} | {"PYTHONPATH": str(source)}
    for _ in range(repeats):
        command = [python, "-X", "importtime", "-c", "import ki2api_tray.app"]
        done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        for item in parse_importtime(done.stderr):
            best[item.module] = min(best.get(item.module, item.self_us), item.self_us)
    groups: dict[str, int] = {}
    for module, self_us in best.items():
        parts = module.split(".")
        group = ".".join(parts[:2]) if parts[0] == "ki2api_tray" and len(parts) > 2 else parts[0]
        groups[group] = groups.get(group, 0) + self_us
    lines = [f"import ki2api_tray.app from {source}: {sum(best.values()) / 1000:.0f} ms in {len(best)} modules"]
    lines += [f"  {us / 1000:7.1f}  {group}" for group, us in sorted(groups.items(), key=lambda kv: -kv[1])[:top]]
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.imports", description=__doc__)
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs the app")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "imports.txt")
    parser.add_argument("--top", type=int, default=25, help="lines per profile table")
    parser.add_argument(
        "--startup",
        type=int,
        metavar="N",
        help="only profile importing the app: fastest of N runs per module, grouped by package",
    )
    parser.add_argument("--source", type=Path, default=REPO_ROOT, help="with --startup: the checkout to import")
    args = parser.parse_args(argv)
    if args.startup:
        print("\n".join(startup_profile(args.python, args.source, args.startup, args.top)))
        return 0
    with tempfile.TemporaryDirectory(prefix="ki2api-imports-") as tmp:
        runs, healthy, at_start = trace(args.python, Path(tmp))
    modules = sorted(set().union(*runs.values()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(modules) + "\n", encoding="utf-8")
    for name, imports in runs.items():
        print(f"{name}: {len(imports)} modules")
    print(f"union: {len(modules)} modules -> {args.out}")
    print(f"serve: spawn to a running /health {healthy:.2f} s (with -X importtime, which slows imports)")
    print("serve, imports until /health said running:")
    print("\n".join(profile(at_start, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

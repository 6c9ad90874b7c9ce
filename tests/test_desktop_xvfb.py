"""The double-click path for real: `python -m ki2api_tray` with no arguments, under Xvfb with a tray host.

The app docks its icon (GTK backend), serves the official OpenAI SDK from the fake Kiro, follows a token
file rewritten on disk, and its menu's Stop / Start / Quit do what they say, driven with the keyboard the
way a person would. Skipped only where Xvfb and its helpers are not installed (CI installs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.fake_kiro import write_token_file
from tests.fixtures_kiro import KiroEnv

TOOLS = ("Xvfb", "trayer", "xdotool", "dbus-run-session", "import")
pytestmark = [
    pytest.mark.xvfb,
    pytest.mark.skipif(
        any(shutil.which(tool) is None for tool in TOOLS), reason=f"needs {', '.join(TOOLS)} (apt: see .ci/run)"
    ),
]


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def display(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A virtual screen with a fresh XEmbed tray host; yields the environment to run X clients in."""
    read_end, write_end = os.pipe()  # Xvfb picks a free display itself and writes its number here
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "480x400x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    processes = [xvfb]
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()
        assert number, "Xvfb did not start"
        env = {**os.environ, "DISPLAY": f":{number}"}
        trayer = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "left", "--widthtype", "pixel", "--width", "480",
             "--heighttype", "pixel", "--height", "32", "--transparent", "false", "--tint", "0xe8e8ec",
             "--SetDockType", "true", "--expand", "false", "--margin", "0"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(trayer)
        wait_for(lambda: xdotool(env, "search", "--class", "trayer").returncode == 0, 10, "trayer")
        yield env
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)


def xdotool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=10, check=False)


def gi_path(tmp_path: Path) -> str:
    """pystray's GTK backend needs PyGObject; expose Debian's python3-gi to this interpreter if it lacks it."""
    if subprocess.run([sys.executable, "-c", "import gi"], capture_output=True).returncode == 0:
        return ""
    shim = tmp_path / "gi-shim"
    shim.mkdir()
    for module in ("gi", "cairo"):
        source = Path("/usr/lib/python3/dist-packages") / module
        if source.exists():
            (shim / module).symlink_to(source)
    return str(shim)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).json().get("status") == "running"  # type: ignore[no-any-return]
    except httpx.HTTPError:
        return False


def menu_choose(env: dict[str, str], key: str) -> None:
    """Open the tray menu with a right click on the icon, then pick an item with the keyboard."""
    xdotool(env, "mousemove", "14", "16", "click", "3")
    wait_for(
        lambda: xdotool(env, "search", "--onlyvisible", "--maxdepth", "1", "--class", "ki2api-tray").returncode == 0,
        5,
        "the menu to open",
    )
    time.sleep(0.3)  # mapped is not yet painted: GTK needs a moment before it takes keys
    xdotool(env, "key", key, "Return")


def test_double_click_path_serves_follows_token_and_obeys_menu(
    display: dict[str, str], kiro_env: KiroEnv, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    shim = gi_path(tmp_path)
    repo = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        **display,
        "PYSTRAY_BACKEND": "gtk",
        "KI2API_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(p for p in (shim, repo) if p),
        "NO_AT_BRIDGE": "1",
    }
    app = subprocess.Popen(
        ["dbus-run-session", "--", sys.executable, "-m", "ki2api_tray"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a failed test can end the app and its session bus together
    )
    try:
        wait_for(lambda: healthy(url) or app.poll() is not None, 30, "the server")
        assert app.poll() is None, app.communicate()[0]

        # It serves OpenAI clients.
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="ki2api-key-2024", max_retries=0)
        reply = client.chat.completions.create(
            model="claude-sonnet-4-20250514", messages=[{"role": "user", "content": "from the tray"}]
        )
        assert reply.choices[0].message.content == "Echo: from the tray"

        # Kiro rewrites the token file (another login): the next requests use it, no restart.
        second = kiro_env.fake.accounts.add_social()
        write_token_file(kiro_env.home, second)

        def uses_second_login() -> bool:
            client.chat.completions.create(model="claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}])
            return kiro_env.fake.chat_requests()[-1].headers["authorization"] == f"Bearer {second.access_token}"

        wait_for(uses_second_login, 3, "the rewritten token file to be used")

        # A picture of the real menu, for people (and for docs/); the menu redraws at most once a second.
        time.sleep(2.5)
        xdotool(display, "mousemove", "14", "16", "click", "3")
        time.sleep(1.0)
        subprocess.run(["import", "-window", "root", str(tmp_path / "menu.png")], env=display, check=True, timeout=20)
        xdotool(display, "key", "Escape")
        time.sleep(0.3)

        menu_choose(display, "Down")  # the first item you can pick is "Stop server"
        wait_for(lambda: not healthy(url), 10, "Stop server to stop the server")
        menu_choose(display, "Down")  # now it reads "Start server"
        wait_for(lambda: healthy(url), 10, "Start server to start it again")
        menu_choose(display, "Up")  # the last item: "Quit ki2api"
        code = app.wait(timeout=15)
        assert code == 0, app.communicate()[0]
        assert not healthy(url)
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
        output = app.communicate(timeout=10)[0]
    assert kiro_env.account.access_token not in output
    shown = Path(os.environ.get("KI2API_TRAY_SCREENSHOT", ""))
    if shown.name:
        shutil.copy(tmp_path / "menu.png", shown)


def test_from_source_without_pygobject_says_why_the_icon_has_no_menu(
    display: dict[str, str], kiro_env: KiroEnv, tmp_path: Path
) -> None:
    """Without PyGObject pystray falls back to its X11 backend, which has no menu: one line says so and how to fix
    it, at start and on the status page."""
    no_gi = tmp_path / "no-gi"
    no_gi.mkdir()
    (no_gi / "gi.py").write_text("raise ImportError('PyGObject is not installed (simulated)')\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**display, "KI2API_PORT": str(port), "PYTHONPATH": os.pathsep.join((str(no_gi), repo))}
    env.pop("PYSTRAY_BACKEND", None)  # the suite's dummy backend; here pystray must choose as it would for a user
    app = subprocess.Popen(
        [sys.executable, "-m", "ki2api_tray"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: healthy(url) or app.poll() is not None, 30, "the server")
        assert app.poll() is None, app.communicate()[0]
        page = httpx.get(f"{url}/", timeout=5).text
    finally:
        app.terminate()
        output = app.communicate(timeout=15)[0]
    assert "needs PyGObject" in page and "python3 -m venv --system-site-packages" in page, output
    hints = [line for line in output.splitlines() if "needs PyGObject" in line]
    assert len(hints) == 1, output
    assert "python3-gi" in hints[0] and "--system-site-packages" in hints[0]

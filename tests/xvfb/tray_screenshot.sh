#!/usr/bin/env bash
# Screenshot of the real ki2api tray (GTK backend) with its menu open, under Xvfb with a fresh trayer.
#
#   tests/xvfb/tray_screenshot.sh OUT.png            (LANGUAGE_OVERRIDE=zh for the Chinese menu)
#
# Needs (Debian/Ubuntu): xvfb trayer xdotool imagemagick dbus-x11 x11-utils python3-gi gir1.2-gtk-3.0
# and fonts (fonts-dejavu-core; fonts-noto-cjk for Chinese). pystray's GTK backend needs PyGObject: if
# $PYTHON cannot `import gi`, Debian's python3-gi is exposed to it through a small PYTHONPATH folder
# (same CPython minor version, so the compiled module loads). Alternative: a venv made from /usr/bin/python3
# with --system-site-packages and `pip install -e .`.
set -euo pipefail

out=$(realpath -m "${1:?usage: $0 OUT.png}")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d)
pids=()

cleanup() {
    # End the demo itself first: dbus-run-session then stops its bus daemon; a TERM to it would orphan that.
    if [[ -s "$work/demo.pid" ]]; then
        kill "$(cat "$work/demo.pid")" 2>/dev/null || true
        wait "${demo:-}" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

wait_until() {  # wait_until SECONDS COMMAND...: poll a condition with a deadline
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then echo "timed out waiting for: $*" >&2; return 1; fi
        sleep 0.1
    done
}

# -displayfd: Xvfb picks a free display number itself, so parallel runs cannot collide. -noreset: otherwise
# the server resets when its last client (the readiness probe) disconnects, and the next client fails.
Xvfb -displayfd 3 -screen 0 480x480x24 -nolisten tcp -noreset 3>"$work/display" >"$work/xvfb.log" 2>&1 &
pids+=($!)
wait_until 10 test -s "$work/display"
export DISPLAY=":$(tr -d '[:space:]' <"$work/display")"
wait_until 10 xwininfo -root

# A fresh XEmbed tray host per run: an old one can keep stale icons (tray-and-packaging.md §1.10).
trayer --edge top --align left --widthtype pixel --width 480 --heighttype pixel --height 32 \
    --transparent false --tint 0xe8e8ec --SetDockType true --expand false --margin 0 >"$work/trayer.log" 2>&1 &
pids+=($!)
wait_until 10 xdotool search --class trayer || { echo "DISPLAY=$DISPLAY"; cat "$work/xvfb.log" "$work/trayer.log"; exit 1; } >&2

if ! "$python" -c "import gi" 2>/dev/null; then
    mkdir -p "$work/gi-shim"
    for module in gi cairo; do
        [[ -e /usr/lib/python3/dist-packages/$module ]] && ln -s "/usr/lib/python3/dist-packages/$module" "$work/gi-shim/"
    done
    export PYTHONPATH="$work/gi-shim${PYTHONPATH:+:$PYTHONPATH}"
fi

cat >"$work/demo.py" <<'PY'
"""Run the real TrayUI + ProxyService with a trivial app and a plausible state, until told to quit."""
import os
import socket
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import gi
from gi.repository import GLib

GLib.set_prgname("ki2api-tray")  # the WM_CLASS the script looks for to see that the menu is open

from ki2api_tray.desktop import autostart
from ki2api_tray.config import load_settings
from ki2api_tray.service import ProxyService
from ki2api_tray.state import AppState, Phase, Quota, TokenHealth, TokenStatus
from ki2api_tray.desktop.tray import TrayUI

ready, quit_flag = Path(sys.argv[1]), Path(sys.argv[2])
ready.with_name("demo.pid").write_text(str(os.getpid()))
port = 8989
with socket.socket() as probe:
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        port = 0  # a real ki2api is running here; do not fight it
settings = load_settings({"port": port})
expires = datetime.now().astimezone() + timedelta(minutes=47, seconds=30)


def app_factory(reporter):
    async def hello(request):
        return PlainTextResponse("ki2api demo")

    return Starlette(routes=[Route("/", hello)])


state = AppState()
service = ProxyService(
    settings, state, app_factory=app_factory, token_reload=lambda: TokenStatus(TokenHealth.VALID, expires, "social")
)
start_at_login = autostart.for_this_os()
start_at_login.enable()
tray = TrayUI(service, state, settings, autostart=start_at_login)


def script():
    while state.snapshot().phase is not Phase.RUNNING:
        if state.snapshot().phase is Phase.ERROR:  # lost a race for 8989 with a parallel run: any port will do
            service.settings = replace(settings, port=0)
            service.start()
        time.sleep(0.05)
    for n in range(12):
        service.reporter.request_finished(ok=n != 7, error="" if n != 7 else "Kiro said 429")
    now = datetime.now().astimezone()
    resets = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
    service.reporter.quota_changed(Quota("KIRO FREE", used=12.5, limit=50, resets_at=resets))
    time.sleep(2.5)  # let the debounced menu refresh land
    ready.touch()
    while not quit_flag.exists():
        time.sleep(0.1)
    tray.quit()


threading.Thread(target=script, daemon=True).start()
tray.run()
PY

export PYSTRAY_BACKEND=gtk HOME="$work/home" KI2API_HOME="$work/ki2api" XDG_CONFIG_HOME="$work/home/.config"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" NO_AT_BRIDGE=1
[[ -n "${LANGUAGE_OVERRIDE:-}" ]] && export KI2API_LANGUAGE=$LANGUAGE_OVERRIDE
mkdir -p "$work/home"
# A private session bus: pystray's GTK backend talks D-Bus for notifications.
dbus-run-session -- "$python" "$work/demo.py" "$work/ready" "$work/quit" >"$work/demo.log" 2>&1 &
demo=$!
pids+=($demo)
if ! wait_until 30 test -e "$work/ready"; then cat "$work/demo.log" >&2; exit 1; fi

# trayer packs icons from the left; the first icon sits in the top-left 32x32 cell.
xdotool mousemove 14 16 click 3
# The open menu is a mapped top-level window of our process.
wait_until 5 xdotool search --onlyvisible --maxdepth 1 --class ki2api-tray
sleep 0.5  # mapped is not painted yet; give GTK a moment to draw the items
import -window root "$out"
touch "$work/quit"
wait_until 15 bash -c "! kill -0 $demo" || { cat "$work/demo.log" >&2; exit 1; }
rm -f "$work/demo.pid"
echo "saved $out"

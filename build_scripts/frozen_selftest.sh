#!/usr/bin/env bash
# Build the frozen app on this machine (Linux or macOS) and prove it works the way a double-click starts it:
# `--selftest` with stdout and stderr closed (a windowed app has neither), then a headless start timed until
# /health answers. Prints the bundle size and both times; exits non-zero on any failure.
#
# Usage: build_scripts/frozen_selftest.sh [--out DIR] [--clean]
#   --out DIR  build into DIR/dist (work files in DIR/work); default build/frozen. A build there is reused
#              while no input changed (sources, spec, assets, pyproject, installed packages).
#   --clean    rebuild even when the cached build is current.
# Environment: PYTHON (default python3) must have the project installed; PyInstaller is added when missing.
# Written for bash 3.2 as well, because that is the bash macOS ships.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="build/frozen"
CLEAN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "frozen_selftest: unknown argument $1" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
APP="ki2api-tray"
if [ "$(uname -s)" = "Darwin" ]; then
  BUNDLE="$OUT/dist/$APP.app"
  BIN="$BUNDLE/Contents/MacOS/$APP"
else
  BUNDLE="$OUT/dist/$APP"
  BIN="$BUNDLE/$APP"
fi
STAMP="$OUT/build.stamp"
# PyInstaller's cache of analysed binaries lives under HOME by default; tests give every run a new HOME.
export PYINSTALLER_CONFIG_DIR="${PYINSTALLER_CONFIG_DIR:-$ROOT/build/pyinstaller-cache}"

fail() { echo "frozen_selftest: FAILED: $*" >&2; exit 1; }
now_ms() { "$PY" -c 'import time; print(int(time.time() * 1000))'; }
seconds() { "$PY" -c "import sys; print(f'{int(sys.argv[1]) / 1000:.2f}')" "$1"; }

# What a build depends on besides file times: the file list (a deleted module must rebuild) and the packages.
build_inputs() {
  echo "python: $(command -v "$PY") $("$PY" -c 'import sys; print(sys.version.split()[0])')"
  find ki2api_tray assets pyinstaller.spec pyproject.toml -type f ! -name '*.pyc' | LC_ALL=C sort
  "$PY" -m pip freeze --exclude-editable 2>/dev/null || true
}

is_current() {
  [ "$CLEAN" = 0 ] && [ -x "$BIN" ] && [ -f "$STAMP" ] || return 1
  [ "$(build_inputs)" = "$(cat "$STAMP")" ] || return 1
  [ -z "$(find ki2api_tray assets pyinstaller.spec pyproject.toml -type f ! -name '*.pyc' -newer "$STAMP" | head -n 1)" ]
}

build() {
  "$PY" -c 'import ki2api_tray.app' 2>/dev/null || fail "$PY lacks the app's dependencies; install the project first (pip install -e .)"
  if ! "$PY" -c 'import PyInstaller' 2>/dev/null; then
    echo "frozen_selftest: installing PyInstaller into $PY"
    "$PY" -m pip install -q "pyinstaller>=6.5" || fail "could not install PyInstaller"
  fi
  rm -f "$STAMP"
  mkdir -p "$OUT"
  local started
  started=$(now_ms)
  if ! "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
      --distpath "$OUT/dist" --workpath "$OUT/work" pyinstaller.spec >"$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log" >&2
    fail "PyInstaller could not build (full log: $OUT/build.log)"
  fi
  [ -x "$BIN" ] || fail "the build has no executable at $BIN"
  build_inputs >"$STAMP"
  echo "frozen_selftest: built in $(seconds $(( $(now_ms) - started ))) s"
}

if is_current; then
  echo "frozen_selftest: reusing the current build in $BUNDLE"
else
  build
fi
SIZE_MB=$(( $(du -sk "$BUNDLE" | cut -f1) / 1024 ))
echo "frozen_selftest: bundle $BUNDLE is $SIZE_MB MB"

# A throw-away home: the frozen app must not read or write the user's config, logs or Kiro token.
SANDBOX="$(mktemp -d "${TMPDIR:-/tmp}/ki2api-frozen.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$SANDBOX"
}
trap cleanup EXIT
mkdir -p "$SANDBOX/home"
LOG="$SANDBOX/ki2api/logs/ki2api-tray.log"

# 1. The self-test, started like a windowed app: closed stdout and stderr turn into sys.stdout = None.
started=$(now_ms)
status=0
HOME="$SANDBOX/home" KI2API_HOME="$SANDBOX/ki2api" "$BIN" --selftest </dev/null >&- 2>&- || status=$?
SELFTEST_MS=$(( $(now_ms) - started ))
grep -h "ki2api_tray.selftest" "$LOG" 2>/dev/null | sed 's/^.*ki2api_tray.selftest: /  /' || true
if [ "$status" != 0 ]; then
  echo "--- last lines of the app's log ---" >&2
  tail -n 30 "$LOG" >&2 2>/dev/null || echo "(the app wrote no log at $LOG)" >&2
  fail "--selftest exited with $status"
fi
echo "frozen_selftest: --selftest passed with closed streams in $(seconds "$SELFTEST_MS") s (process start to exit)"

# 2. Time to a healthy server, as a user sees it: launch `serve`, poll /health, stop with SIGTERM.
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
started=$(now_ms)
# A plain command (no function or subshell around it), so $! is the app itself and gets the SIGTERM.
HOME="$SANDBOX/home" KI2API_HOME="$SANDBOX/ki2api" KI2API_UPDATE_CHECK=0 "$BIN" serve --port "$PORT" </dev/null >&- 2>&- &
SERVER_PID=$!
HEALTHY_AT=$("$PY" - "$PORT" <<'EOF'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/health"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
deadline = time.time() + 30
while time.time() < deadline:
    try:
        with opener.open(url, timeout=2) as response:
            if response.status == 200:
                print(int(time.time() * 1000))
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.02)
sys.exit(1)
EOF
) || fail "the frozen server did not answer $PORT/health within 30 s"
HEALTH_MS=$(( HEALTHY_AT - started ))
kill -TERM "$SERVER_PID"
stopped=0
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then stopped=1; break; fi
  sleep 0.2
done
[ "$stopped" = 1 ] || fail "the frozen server did not stop within 6 s of SIGTERM"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
[ "$status" = 0 ] || fail "the frozen server exited with $status after SIGTERM"
echo "frozen_selftest: serve answered /health $(seconds "$HEALTH_MS") s after launch and stopped cleanly on SIGTERM"
echo "frozen_selftest: passed (size $SIZE_MB MB, selftest $(seconds "$SELFTEST_MS") s, start to healthy $(seconds "$HEALTH_MS") s)"

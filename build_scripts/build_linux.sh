#!/usr/bin/env bash
# Release build for Linux: a clean venv with the project and PyInstaller, the onedir build, its self-test
# (with closed streams, see frozen_selftest.sh), then dist/ki2api-tray-<version>-linux-<arch>.tar.gz.
# Usage: build_scripts/build_linux.sh          PYTHON=python3.12 picks the interpreter (default python3).
# The bundle runs on Linux with the same or a newer glibc than the build machine: build on an old distro.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENV="build/venv-release"
OUT="build/release"

rm -rf "$VENV" "$OUT"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q ".[build]"

PYTHON="$VENV/bin/python" bash build_scripts/frozen_selftest.sh --out "$OUT" --clean

VERSION="$("$VENV/bin/python" -c 'import ki2api_tray; print(ki2api_tray.__version__)')"
ARCHIVE="dist/ki2api-tray-$VERSION-linux-$(uname -m).tar.gz"
mkdir -p dist
# tar keeps the executable bit and any symlinks, which a zip made on Linux may not.
tar -C "$OUT/dist" -czf "$ARCHIVE" ki2api-tray
echo "build_linux: wrote $ARCHIVE ($(( $(wc -c <"$ARCHIVE") / 1048576 )) MB)"

#!/usr/bin/env bash
# Release build for macOS: a clean venv with the project and PyInstaller, dist/ki2api-tray.app (menu-bar
# agent, no Dock icon), its self-test (see frozen_selftest.sh), then a .zip of the .app and, with --dmg, a .dmg.
# Usage: build_scripts/build_macos.sh [--dmg]
#   PYTHON=python3.12 picks the interpreter; TARGET_ARCH=universal2 needs a universal2 Python (python.org).
#   CODESIGN_IDENTITY / ENTITLEMENTS_FILE sign with a Developer ID (docs/packaging.md); otherwise ad-hoc.
# Written for bash 3.2, the bash macOS ships.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MAKE_DMG=0
case "${1:-}" in
  --dmg) MAKE_DMG=1 ;;
  "") ;;
  *) echo "build_macos: unknown argument $1 (only --dmg)" >&2; exit 2 ;;
esac
VENV="build/venv-release"
OUT="build/release"
APP_DIR="$OUT/dist/ki2api-tray.app"

rm -rf "$VENV" "$OUT"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q ".[build]"

PYTHON="$VENV/bin/python" bash build_scripts/frozen_selftest.sh --out "$OUT" --clean

VERSION="$("$VENV/bin/python" -c 'import ki2api_tray; print(ki2api_tray.__version__)')"
NAME="ki2api-tray-$VERSION-macos-${TARGET_ARCH:-$(uname -m)}"
mkdir -p dist
# ditto keeps the bundle's symlinks and extended attributes; a plain zip would break the code signature.
ditto -c -k --sequesterRsrc --keepParent "$APP_DIR" "dist/$NAME.zip"
echo "build_macos: wrote dist/$NAME.zip"

if [ "$MAKE_DMG" = 1 ]; then
  STAGE="$OUT/dmg"
  rm -rf "$STAGE"
  mkdir -p "$STAGE"
  ditto "$APP_DIR" "$STAGE/ki2api-tray.app"
  ln -s /Applications "$STAGE/Applications"  # drag-to-install target inside the disk image
  hdiutil create -quiet -volname "ki2api tray" -srcfolder "$STAGE" -ov -format UDZO "dist/$NAME.dmg"
  echo "build_macos: wrote dist/$NAME.dmg"
fi

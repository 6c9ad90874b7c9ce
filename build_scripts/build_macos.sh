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

# A bundle PyInstaller could not sign fails the build instead of a warning (an unsigned arm64 binary is
# killed by the kernel at launch), and PyInstaller verifies the bundle's signature itself afterwards.
export PYINSTALLER_STRICT_BUNDLE_CODESIGN_ERROR=1
export PYINSTALLER_VERIFY_BUNDLE_SIGNATURE=1
PYTHON="$VENV/bin/python" bash build_scripts/frozen_selftest.sh --out "$OUT" --clean

verify_signature() {
  codesign --verify --deep --strict --verbose=2 "$1" || { echo "build_macos: bad code signature on $1" >&2; exit 1; }
}
verify_signature "$APP_DIR"

# hdiutil fails now and then on hosted runners ("Resource busy"); one failed leg would cancel the release.
make_dmg() {
  local attempt=1
  until hdiutil create -quiet -volname "ki2api tray" -srcfolder "$1" -ov -format UDZO "$2"; do
    if [ "$attempt" -ge 5 ]; then
      echo "build_macos: hdiutil failed $attempt times" >&2
      return 1
    fi
    echo "build_macos: hdiutil failed (attempt $attempt); trying again in $((attempt * 5)) s" >&2
    sleep $((attempt * 5))
    attempt=$((attempt + 1))
  done
}

VERSION="$("$VENV/bin/python" -c 'import ki2api_tray; print(ki2api_tray.__version__)')"
NAME="ki2api-tray-$VERSION-macos-${TARGET_ARCH:-$(uname -m)}"
mkdir -p dist
# ditto keeps the bundle's symlinks and extended attributes; a plain zip would break the code signature.
ditto -c -k --sequesterRsrc --keepParent "$APP_DIR" "dist/$NAME.zip"
# What a person unpacks must still carry a valid signature.
CHECK="$OUT/zip-check"
rm -rf "$CHECK"
mkdir -p "$CHECK"
ditto -x -k "dist/$NAME.zip" "$CHECK"
verify_signature "$CHECK/ki2api-tray.app"
echo "build_macos: wrote dist/$NAME.zip (signature verified after unpacking)"

if [ "$MAKE_DMG" = 1 ]; then
  STAGE="$OUT/dmg"
  rm -rf "$STAGE"
  mkdir -p "$STAGE"
  ditto "$APP_DIR" "$STAGE/ki2api-tray.app"
  ln -s /Applications "$STAGE/Applications"  # drag-to-install target inside the disk image
  verify_signature "$STAGE/ki2api-tray.app"
  make_dmg "$STAGE" "dist/$NAME.dmg"
  echo "build_macos: wrote dist/$NAME.dmg"
fi

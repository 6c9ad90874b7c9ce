"""`python -m ki2api_tray`, and the entry point PyInstaller freezes."""

import sys

from ki2api_tray.app import main

if __name__ == "__main__":
    sys.exit(main())

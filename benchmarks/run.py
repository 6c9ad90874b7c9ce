"""The one benchmark command: `python -m benchmarks.run [--quick]` (or `python benchmarks/run.py`).

It prints one table of figures with their targets; benchmarks/README.md says what each one means.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    if not __package__:
        # Started as a script: make the repository (benchmarks/, tests/, ki2api_tray/) importable.
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.suite import run_suite

    return run_suite(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

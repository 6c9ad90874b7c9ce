"""The rooms of the package and the doors between them (design.md §1, docs/architecture.md).

A module belongs to a room: `core`, `kiro`, `api`, `desktop`, `usage`, or, at the top level, a room of its own named
after the module. Each rule says which rooms a room may not import; a failure names the file and the import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ki2api_tray"
STDLIB = set(sys.stdlib_module_names)
ROOMS = ("core", "kiro", "api", "desktop", "usage")
EVERYTHING = "*"

# room -> rooms it must not import. The composition root (`app`) may import anything.
FORBIDDEN: dict[str, set[str]] = {
    # what every room shares stands on nothing above it
    "paths": {EVERYTHING},
    "state": {EVERYTHING},
    "logs": {EVERYTHING},
    "resources": {EVERYTHING},
    "limits": {EVERYTHING},
    "config": {"core", "kiro", "api", "desktop", "service", "runtime", "app", "selftest"},
    "i18n": {"core", "kiro", "api", "desktop", "service", "runtime", "app", "selftest"},
    "wording": {"core", "kiro", "api", "desktop", "service", "runtime", "app", "selftest"},
    # the Kiro side knows nothing of HTTP routes, the desktop or how the process is wired
    "kiro": {"api", "desktop", "service", "runtime", "app", "selftest", "wording", "i18n", "usage"},
    # the usage store keeps request records (state's vocabulary) and knows nothing of HTTP, Kiro or the tray
    "usage": {"core", "kiro", "api", "desktop", "service", "runtime", "app", "selftest", "wording", "i18n", "config"},
    # the API never reaches into the desktop or the process wiring
    "api": {"desktop", "service", "runtime", "app", "selftest"},
    # the desktop talks to the service and reads the state; never the Kiro side or the API directly
    "desktop": {"core", "kiro", "api", "runtime", "app", "selftest", "usage"},
    "service": {"api", "desktop", "runtime", "app", "selftest"},
    "report": {"api", "desktop", "service", "runtime", "app", "selftest"},
    "runtime": {"desktop", "app", "selftest"},
    "selftest": {"app"},
}


def imports_of(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, import) pairs, package-relative imports resolved to absolute names ("ki2api_tray.kiro.relay")."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    here = list(path.relative_to(root).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                found.append((node.lineno, node.module or ""))
                continue
            base = here[: len(here) - (node.level - 1)]
            if node.module:
                found.append((node.lineno, "ki2api_tray." + ".".join([*base, node.module])))
            else:  # `from . import a, b`
                found.extend((node.lineno, "ki2api_tray." + ".".join([*base, alias.name])) for alias in node.names)
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_stdlib_and_core(path: Path) -> None:
    for line, name in imports_of(path):
        if name.startswith("ki2api_tray."):
            assert name.startswith("ki2api_tray.core."), f"core/{path.name}:{line} imports {name} from outside the core"
            continue
        assert name.split(".")[0] in STDLIB | {"__future__"}, f"core/{path.name}:{line} imports {name}"


def violations(path: Path, root: Path = PACKAGE) -> list[str]:
    where = path.relative_to(root)
    room = where.with_suffix("").parts[0]
    forbidden = FORBIDDEN.get(room, set())
    found = []
    for line, name in imports_of(path, root):
        if not name.startswith("ki2api_tray."):
            continue
        target = name.split(".")[1]
        if target in (room, "__version__"):
            continue
        if EVERYTHING in forbidden:
            found.append(f"{where}:{line} imports {name}, but {room} may import nothing of ki2api")
        elif target in forbidden:
            found.append(f"{where}:{line} imports {name}: the {room} room may not import {target}")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_rooms_import_only_through_their_doors(path: Path) -> None:
    assert not violations(path), "\n".join(violations(path))


def test_every_module_has_a_room_with_rules() -> None:
    """A new top-level module has to be placed in the rules above (or into a room), not slip past them."""
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "app"}
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert rooms == set(ROOMS), f"rooms on disk {sorted(rooms)} differ from the rules' {sorted(ROOMS)}"
    missing = sorted((top | rooms) - set(FORBIDDEN) - {"core"})
    assert not missing, f"no import rules for: {', '.join(missing)}"


def test_the_top_level_stays_small() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("__"))
    assert len(top) <= 13, f"{len(top)} modules at the top level ({', '.join(top)}): give them a room"


def test_rules_name_the_offending_import(tmp_path: Path) -> None:
    """The checker itself, on a package laid out like ours in a temporary folder."""
    (tmp_path / "desktop").mkdir()
    (tmp_path / "api").mkdir()
    tray = tmp_path / "desktop" / "tray.py"
    tray.write_text("import os\nfrom ..state import AppState\nfrom ..kiro.tokens import TokenStore\n", encoding="utf-8")
    server = tmp_path / "api" / "server.py"
    server.write_text("from ..desktop import tray\n", encoding="utf-8")
    assert violations(tray, tmp_path) == [
        "desktop/tray.py:3 imports ki2api_tray.kiro.tokens: the desktop room may not import kiro"
    ]
    assert violations(server, tmp_path) == [
        "api/server.py:1 imports ki2api_tray.desktop: the api room may not import desktop"
    ]

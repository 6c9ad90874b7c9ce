"""The import direction of design.md §1: the core is pure, the tray only talks to the service."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ki2api_tray"
STDLIB = set(sys.stdlib_module_names)

# module -> package modules it must not import
FORBIDDEN = {
    "state": {"*"},
    "paths": {"*"},
    "config": {"server", "service", "tray", "upstream", "tokens", "app"},
    "upstream": {"server", "service", "tray", "app"},
    "tokens": {"server", "service", "tray", "app", "upstream"},
    "server": {"service", "tray", "app"},
    "relay": {"server", "service", "tray", "app"},
    "responses": {"server", "service", "tray", "app"},
    "keeper": {"server", "service", "tray", "app"},
    "service": {"tray", "app"},
    "tray": {"server", "upstream", "tokens", "relay", "app"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            if node.level and not node.module:
                names.update("." * node.level + alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_stdlib_and_core(path: Path) -> None:
    for name in imports_of(path):
        if name.startswith(".."):
            pytest.fail(f"{path.name} imports {name} from outside the core")
        if name.startswith("."):
            continue
        assert name.split(".")[0] in STDLIB | {"__future__"}, f"{path.name} imports {name}"


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_edge_modules_respect_the_layers(module: str) -> None:
    forbidden = FORBIDDEN[module]
    for name in imports_of(PACKAGE / f"{module}.py"):
        if not name.startswith(".") or name.startswith(".core"):
            continue
        target = name.lstrip(".").split(".")[0]
        assert not ("*" in forbidden or target in forbidden), f"{module}.py imports {name}"

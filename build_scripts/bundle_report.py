"""Where the bytes of a PyInstaller one-folder build go, per package (Linux builds).

    python build_scripts/bundle_report.py build/frozen                       # sizes per package
    python build_scripts/bundle_report.py build/frozen --imported build/imports.txt   # + never imported
    python build_scripts/bundle_report.py build/frozen --compare build/before         # before/after table

OUT is a frozen_selftest.sh output folder (OUT/dist/ki2api-tray and OUT/work/pyinstaller). Every file on disk
and every module inside the executable's PYZ archive is counted once, under the top-level package it belongs
to: an extension module under its package, a shared library under the package whose extension modules need
it (`readelf -d`, followed transitively), `libpython` and the bootloader under "python", the compiled standard
library under "stdlib". `--imported` takes the module list `python -m benchmarks.imports` writes and lists
what the build carries that no run of the app ever imported: the candidates for `excludes` in the spec.
Run it with a Python that has PyInstaller installed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

APP = "ki2api-tray"
MB = 1024 * 1024
_EXTENSION = re.compile(r"^(?P<name>[^.]+)\..*\.so$|^(?P<plain>[^.]+)\.so$")
SHARED = "(shared libraries)"


@dataclass
class Item:
    """One bundled thing: a module in the PYZ or a file on disk, with its size in bytes."""

    name: str
    group: str
    size: int
    module: str | None = None  # the importable name, for modules
    libraries: set[str] = field(default_factory=set)  # shared libraries only this extension pulls in


def group_of(module: str) -> str:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top.lstrip("_") in sys.stdlib_module_names:
        return "stdlib"
    return top


def needed(path: Path) -> list[str]:
    try:
        out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def extension_module(path: Path, internal: Path) -> str | None:
    """`PIL/_imaging.cpython-311-x86_64-linux-gnu.so` -> `PIL._imaging`; None for a plain shared library."""
    match = _EXTENSION.match(path.name)
    if not match or path.name.startswith("lib"):
        return None
    stem = match.group("name") or match.group("plain")
    parts = path.relative_to(internal).parent.parts
    if parts[:2] and re.fullmatch(r"python3\.\d+", parts[0]):
        parts = ()  # python3.X/lib-dynload/<name>.so is a top-level stdlib module
    return ".".join([*parts, stem])


def scan(out: Path) -> list[Item]:
    bundle = out / "dist" / APP
    internal = bundle / "_internal"
    items: list[Item] = []
    pyz_size = 0
    executable = CArchiveReader(str(bundle / APP))
    for name, entry in executable.toc.items():
        if name.endswith(".pyz"):
            pyz_size = entry[1]
    items.append(Item("bootloader and entry scripts", "python", (bundle / APP).stat().st_size - pyz_size))
    pyz = ZlibArchiveReader(str(out / "work" / "pyinstaller" / "PYZ-00.pyz"))
    compressed = {name: entry[2] for name, entry in pyz.toc.items()}
    scale = pyz_size / max(1, sum(compressed.values()))  # spread the archive's own overhead evenly
    for name, length in compressed.items():
        items.append(Item(name, group_of(name), round(length * scale), module=name))
    files = [p for p in internal.rglob("*") if p.is_file() and not p.is_symlink()]
    libraries: dict[str, Path] = {}
    for path in files:
        if ".so" in path.name and extension_module(path, internal) is None:
            libraries.setdefault(path.name, path)
    owners: dict[str, set[str]] = defaultdict(set)  # library -> groups whose extensions need it
    sole: dict[str, set[str]] = defaultdict(set)  # library -> extension modules that need it

    def walk(lib: str, group: str, module: str, seen: set[str]) -> None:
        if lib in seen or lib not in libraries:
            return
        seen.add(lib)
        owners[lib].add(group)
        sole[lib].add(module)
        for dep in needed(libraries[lib]):
            walk(dep, group, module, seen)

    for path in files:
        rel = path.relative_to(internal)
        module = extension_module(path, internal)
        if module is not None:
            group = group_of(module)
            items.append(Item(str(rel), group, path.stat().st_size, module=module))
            for lib in needed(path):
                walk(lib, group, module, set())
        elif path.name == "base_library.zip":
            items.append(Item(str(rel), "stdlib", path.stat().st_size))
        elif path.name not in libraries:
            top = rel.parts[0]
            group = top.split("-")[0].lower() if top.endswith(".dist-info") else top
            items.append(Item(str(rel), "assets" if group == "assets" else f"{group} (data)", path.stat().st_size))
    for lib, path in libraries.items():
        if lib.startswith("libpython"):
            group = "python"
        elif len(owners[lib]) == 1:
            group = next(iter(owners[lib]))
        else:
            group = SHARED
        items.append(Item(str(path.relative_to(internal)), group, path.stat().st_size))
    for item in items:
        if item.module is not None and not item.name.endswith(".pyz"):
            item.libraries = {lib for lib, mods in sole.items() if mods == {item.module}}
    return items


def totals(items: Iterable[Item]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for item in items:
        sums[item.group] += item.size
    return dict(sums)


def _mb(size: int) -> str:
    return f"{size / MB:.2f}"


def report(out: Path) -> str:
    items = scan(out)
    sums = totals(items)
    lines = ["| package | MB |", "|---|---:|"]
    lines += [f"| {group} | {_mb(size)} |" for group, size in sorted(sums.items(), key=lambda kv: -kv[1])]
    lines.append(f"| **total** | **{_mb(sum(sums.values()))}** |")
    return "\n".join(lines)


def compare(before: Path, after: Path) -> str:
    old, new = totals(scan(before)), totals(scan(after))
    lines = ["| package | before MB | after MB | change |", "|---|---:|---:|---:|"]
    for group in sorted(set(old) | set(new), key=lambda g: -max(old.get(g, 0), new.get(g, 0))):
        a, b = old.get(group, 0), new.get(group, 0)
        lines.append(f"| {group} | {_mb(a)} | {_mb(b)} | {(b - a) / MB:+.2f} |")
    a, b = sum(old.values()), sum(new.values())
    lines.append(f"| **total** | **{_mb(a)}** | **{_mb(b)}** | **{(b - a) / MB:+.2f}** |")
    return "\n".join(lines)


def never_imported(out: Path, imported_file: Path) -> str:
    imported = set(imported_file.read_text(encoding="utf-8").split())
    items = scan(out)
    library_size = {Path(i.name).name: i.size for i in items if i.module is None}
    unused: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for item in items:
        if item.module is None or item.module in imported:
            continue
        extra = sum(library_size.get(lib, 0) for lib in item.libraries)
        label = item.module + (f" (+ {', '.join(sorted(item.libraries))})" if item.libraries else "")
        unused[item.group].append((item.size + extra, label))
    lines = ["| package | never imported, MB | largest |", "|---|---:|---|"]
    for group, entries in sorted(unused.items(), key=lambda kv: -sum(s for s, _ in kv[1])):
        entries.sort(reverse=True)
        largest = "; ".join(f"{label} {_mb(size)}" for size, label in entries[:6])
        lines.append(f"| {group} | {_mb(sum(s for s, _ in entries))} | {largest} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="a frozen_selftest.sh --out folder")
    parser.add_argument("--imported", type=Path, help="module list from python -m benchmarks.imports")
    parser.add_argument("--compare", type=Path, metavar="BEFORE", help="another --out folder to compare with")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare(args.compare, args.out))
    else:
        print(report(args.out))
    if args.imported:
        print()
        print(never_imported(args.out, args.imported))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

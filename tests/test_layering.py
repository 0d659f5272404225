"""The packages of ``labkit`` form layers, and the imports keep to them.

Each package may import only the packages below it (``ALLOWED``), so that the sandbox stays
ignorant of grading, and the outputs of the sandbox, however the code grows. Every import counts:
at the top of a module or inside a function, absolute or relative. No two modules may import each
other, directly or around a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

from labkit import paths

PACKAGE = paths.ROOT / "labkit"

#: The modules directly in ``labkit/`` that everything may use, and that use nothing of the kit.
BASE = "base"
#: The commands: directly in ``labkit/``, free to use every package.
APPLICATION = "application"
APPLICATION_MODULES = {"__main__", "cli", "bench", "gpucheck"}

#: Which layers each layer may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    BASE: set(),
    "checks": set(),
    "course": {BASE},
    "sandbox": {BASE, "checks"},
    "outputs": {BASE, "course"},
    "grading": {BASE, "checks", "course", "sandbox", "outputs"},
    "similarity": {BASE, "checks", "course", "sandbox", "outputs", "grading"},
    "audit": {BASE, "checks", "course", "sandbox", "outputs", "grading"},
    APPLICATION: {BASE, "checks", "course", "sandbox", "outputs", "grading", "similarity",
                  "audit"},
}


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """The dotted name of a module file under ``root`` (the folder holding ``labkit``), and
    whether it is a package's ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _is_module(dotted: str, root: Path) -> bool:
    folder = root.joinpath(*dotted.split("."))
    return folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module of the kit that ``path`` imports, anywhere in it."""
    name, is_package = module_name(path, root)
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "labkit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "labkit":
                continue
            for alias in node.names:
                imported = f"{source}.{alias.name}"
                found.add(imported if _is_module(imported, root) else source)
    found.discard(name)
    return found


def layer_of(dotted: str, root: Path) -> str:
    parts = dotted.split(".")
    if len(parts) == 1:
        return BASE  # ``labkit`` itself: its __init__ imports nothing
    if root.joinpath("labkit", parts[1]).is_dir():
        return parts[1]
    return APPLICATION if parts[1] in APPLICATION_MODULES else BASE


def import_graph(root: Path) -> dict[str, set[str]]:
    return {module_name(path, root)[0]: imports_of(path, root)
            for path in sorted((root / "labkit").rglob("*.py"))}


def violations(graph: dict[str, set[str]], root: Path) -> list[str]:
    """Each import from a layer to one it may not use, as "module -> module (from -> to)"."""
    found = []
    for module, imported in sorted(graph.items()):
        layer = layer_of(module, root)
        if layer not in ALLOWED:
            found.append(f"{module}: package {layer!r} has no place in the layers")
            continue
        for target in sorted(imported):
            to = layer_of(target, root)
            if to != layer and to not in ALLOWED[layer]:
                found.append(f"{module} -> {target} ({layer} -> {to})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops (strongly connected groups of more than one module), by Tarjan's
    algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return loops


def test_every_package_imports_only_the_layers_below_it() -> None:
    assert violations(import_graph(paths.ROOT), paths.ROOT) == []


def test_no_module_imports_itself_around_a_loop() -> None:
    assert cycles(import_graph(paths.ROOT)) == []


def test_every_package_of_the_kit_has_a_layer() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages <= set(ALLOWED), packages - set(ALLOWED)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")


def test_the_check_finds_an_import_upwards_and_a_loop(tmp_path) -> None:
    # The sandbox importing the outputs (inside a function, relatively), and two outputs
    # modules importing each other: both must be reported.
    _write(tmp_path, {
        "labkit/__init__.py": "",
        "labkit/paths.py": "",
        "labkit/sandbox/__init__.py": "",
        "labkit/sandbox/runner.py": "def f():\n    from ..outputs import feedback\n",
        "labkit/outputs/__init__.py": "",
        "labkit/outputs/feedback.py": "from . import report\nfrom labkit import paths\n",
        "labkit/outputs/report.py": "from labkit.outputs.feedback import x\n",
    })
    graph = import_graph(tmp_path)
    assert violations(graph, tmp_path) == [
        "labkit.sandbox.runner -> labkit.outputs.feedback (sandbox -> outputs)"]
    assert cycles(graph) == [["labkit.outputs.feedback", "labkit.outputs.report"]]

"""The shape of the code: no import cycle in edge_server/ or firmware/, the edge composed in one
place (edge_server/service.py, imported by no part), and no labels of how the work was split.

The import graph is read from the source (ast), every import counted: module level, inside
functions and under TYPE_CHECKING alike, since each of them is a dependency a reader must follow.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_names(package_dir: Path, prefix: str) -> dict[str, Path]:
    """{"edge_server.rules.component": path, ...} for every .py file under package_dir."""
    mods: dict[str, Path] = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join([prefix, *parts]) if prefix else ".".join(parts)] = path
    return mods


def imports_of(name: str, path: Path, mods: dict[str, Path], roots: set[str]) -> set[str]:
    """The modules of `mods` that module `name` imports, anywhere in its source."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in mods:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module
                       for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in roots and (found := known(target)) and found != name:
                out.add(found)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def graph_of(package_dir: Path, prefix: str) -> dict[str, set[str]]:
    mods = module_names(package_dir, prefix)
    roots = {prefix} if prefix else {n.split(".")[0] for n in mods}
    return {name: imports_of(name, path, mods, roots) for name, path in mods.items()}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(("folder", "prefix"), [
    ("edge_server", "edge_server"),
    ("firmware", ""),          # firmware/nsp and firmware/sim are top-level packages on a board
])
def test_no_import_cycle(folder: str, prefix: str) -> None:
    graph = graph_of(ROOT / folder, prefix)
    assert len(graph) > 20, "the walk found no modules"
    assert cycles(graph) == []


def test_edge_service_is_composed_in_one_place() -> None:
    """edge_server/service.py wires the parts; what it reaches never reaches back to it, and it
    is imported only by what runs a service (the API, the commands, the scenario runners)."""
    graph = graph_of(ROOT / "edge_server", "edge_server")
    reached: set[str] = set()
    todo = list(graph["edge_server.service"])
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    assert {"edge_server.storage.component", "edge_server.rules.component",
            "edge_server.uplink.component", "edge_server.gentest.component"} <= reached
    importers = {m for m, deps in graph.items() if "edge_server.service" in deps}
    assert sorted(importers & reached) == []
    assert "edge_server.api.deps" in importers


def source_files() -> Iterator[Path]:
    skip = {".venv", "typings", ".git", "node_modules", ".mypy_cache", ".pytest_cache"}
    for path in ROOT.rglob("*"):
        if path.suffix in {".py", ".md", ".toml", ".js", ".html", ".css", ".json", ".ini"} and \
                not skip.intersection(path.relative_to(ROOT).parts):
            yield path


def lines_matching(pattern: re.Pattern[str]) -> list[str]:
    """'path:line: text' of every source line (but this file's) where `pattern` is found."""
    here = Path(__file__).resolve()
    return [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
            for p in source_files() if p != here
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace")
                                     .splitlines(), 1)
            if pattern.search(line)]


def test_no_labels_of_how_the_work_was_split() -> None:
    assert lines_matching(re.compile(r"\b(H[0-9][a-z]?|R[0-9]-[A-Z])\b")) == []


def test_docs_and_code_never_point_outside_the_repository() -> None:
    """A user of the repository has no ../shared: facts and their sources live in docs/."""
    assert lines_matching(re.compile(
        r"\.\./shared|\b(?:DOMAIN|TOOLCHAIN|ARCHITECTURE|STYLE)\.md\b")) == []

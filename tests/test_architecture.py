"""DESIGN.md's layers as a test: imports go one way only, and no module imports itself through others.

Every module of the ``scheduler`` package is parsed with ``ast``; every import counts, wherever it is
written (module level, inside functions, under ``TYPE_CHECKING``). A module may import modules of its
own component and of the components listed before it in ``ORDER``; anything else is an upward import.
Separately, the graph of all imports between modules must have no cycle. A new module must be placed in
``ORDER`` before it can pass.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "scheduler"

# The import order, lowest first, grouped by DESIGN.md's layers. A component is a module or a package
# (with everything under it); the package root ``scheduler`` itself is only its ``__init__``.
ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors, units", ("scheduler.errors", "scheduler.files", "scheduler.units", "scheduler.nesting",
                       "scheduler.yaml11", "scheduler.declared")),
    # the results contract (RunSummary, table schemas, statistics): pure data the engine builds and every
    # reader reads; then how results read to people (labels, units) and targets over their metric names
    ("results contract", ("scheduler.results", "scheduler.readable", "scheduler.targets")),
    ("catalog", ("scheduler.catalog",)),
    ("ecs vocabulary", ("scheduler.ecs",)),
    ("placement core", ("scheduler.placement",)),
    ("views", ("scheduler.views",)),
    ("sim and the Python facade", ("scheduler.sim", "scheduler.cluster")),
    ("results folder", ("scheduler.results_folder", "scheduler.output")),
    ("scenario, sweep, report", ("scheduler.scenario", "scheduler.sweep", "scheduler.report")),
    ("plan", ("scheduler.plan",)),
    # the package root (``__version__``, the lazily imported Cluster) first, so the cli may read the version
    ("cli", ("scheduler", "scheduler.interrupts", "scheduler.cli", "scheduler.__main__")),
)
# Imports that break the order on purpose, each with its reason. Empty: there are none today.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``source`` imports ``target`` at ``file:line``."""

    source: str
    target: str
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def modules(src: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(src: Path, package: str = PACKAGE) -> tuple[dict[str, Path], list[Import]]:
    """The modules and every import between two of them."""
    mods = modules(src, package)

    def resolve(name: str) -> str | None:
        """The module an imported name lives in: ``a.b.C`` -> ``a.b`` when ``C`` is not a module."""
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = []
    for name, path in mods.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        rel = path.relative_to(src).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.split(".")[0] != package:
                    continue
                resolved = resolve(target)
                if resolved is not None and resolved != name:
                    edges.append(Import(name, resolved, rel, node.lineno))
    return mods, edges


def component(module: str, order: tuple[tuple[str, tuple[str, ...]], ...] = ORDER) -> tuple[int, str] | None:
    """(position in the flattened order, layer name) of the component a module belongs to."""
    best: tuple[int, str, int] | None = None
    flat = [(comp, layer) for layer, comps in order for comp in comps]
    for pos, (comp, layer) in enumerate(flat):
        is_root = "." not in comp
        inside = module == comp or (not is_root and module.startswith(comp + "."))
        if inside and (best is None or len(comp) > best[2]):
            best = (pos, layer, len(comp))
    return None if best is None else (best[0], best[1])


def layer_violations(mods: dict[str, Path], edges: list[Import],
                     order: tuple[tuple[str, tuple[str, ...]], ...] = ORDER,
                     allowed: dict[tuple[str, str], str] | None = None) -> list[str]:
    """One line per module outside the order and per import of a component listed later than its own."""
    allowed = ALLOWED if allowed is None else allowed
    problems = [f"{mods[m].relative_to(mods[m].parents[len(m.split('.')) - 1]).as_posix()}: module {m} is in no "
                f"layer; add it to ORDER in tests/test_architecture.py" for m in mods if component(m, order) is None]
    for edge in edges:
        src, dst = component(edge.source, order), component(edge.target, order)
        if src is None or dst is None or (edge.source, edge.target) in allowed:
            continue
        if dst[0] > src[0]:
            problems.append(f"{edge.where()}: {edge.source} (layer {src[1]!r}) imports {edge.target} "
                            f"(layer {dst[1]!r}), which comes after it")
    return problems


def cycles(edges: list[Import]) -> list[str]:
    """One line per import cycle (a strongly connected group of modules), naming the imports that form it."""
    graph: dict[str, dict[str, Import]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for group in groups:
        members = set(group)
        links = [e for v in group for w, e in sorted(graph[v].items()) if w in members]
        out.append("import cycle among " + ", ".join(group) + ": "
                   + "; ".join(f"{e.source} imports {e.target} ({e.where()})" for e in links))
    return out


def test_every_import_follows_the_layer_order() -> None:
    mods, edges = imports(ROOT)
    assert len(mods) > 40 and edges  # the package was found and parsed
    assert layer_violations(mods, edges) == []


def test_no_import_cycles() -> None:
    _, edges = imports(ROOT)
    assert cycles(edges) == []


def test_order_names_only_existing_components_and_every_allowance_has_a_reason() -> None:
    mods = modules(ROOT)
    for _, comps in ORDER:
        for comp in comps:
            assert comp in mods, f"{comp} is listed in ORDER but does not exist"
    assert all(reason.strip() for reason in ALLOWED.values())


def test_nothing_below_the_views_formats_an_aws_identity() -> None:
    """ARNs and the account are the views' (DESIGN.md): no module below them holds an ARN or account literal."""
    views = component("scheduler.views")
    assert views is not None
    found = []
    for name, path in modules(ROOT).items():
        layer = component(name)
        if layer is None or layer[0] >= views[0]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    "arn:aws" in node.value or "123456789012" in node.value):
                found.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}: {node.value[:60]!r}")
    assert found == []


def test_the_checker_names_an_upward_import_a_cycle_and_a_module_with_no_layer(tmp_path: Path) -> None:
    pkg = tmp_path / "demo"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "base.py").write_text("import json\n")
    (pkg / "core" / "state.py").write_text("def f():\n    from demo.views import show  # upward, in a function\n")
    (pkg / "core" / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n")
    (pkg / "core" / "b.py").write_text("from demo.core.a import thing\nfrom demo import base\n")
    (pkg / "views.py").write_text("import demo.core.b as b\n")
    (pkg / "stray.py").write_text("")
    order = (("base", ("demo.base",)), ("core", ("demo.core",)), ("views", ("demo.views", "demo")))
    mods, edges = imports(tmp_path, "demo")
    problems = layer_violations(mods, edges, order, allowed={})
    assert problems == [
        "demo/stray.py: module demo.stray is in no layer; add it to ORDER in tests/test_architecture.py",
        "demo/core/state.py:2: demo.core.state (layer 'core') imports demo.views (layer 'views'), which comes "
        "after it",
    ]
    assert cycles(edges) == ["import cycle among demo.core.a, demo.core.b: demo.core.a imports demo.core.b "
                             "(demo/core/a.py:3); demo.core.b imports demo.core.a (demo/core/b.py:1)"]
    allowed = {("demo.core.state", "demo.views"): "a reason"}
    assert len(layer_violations(mods, edges, order, allowed=allowed)) == 1

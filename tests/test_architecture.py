"""The house plan (docs/architecture.md): layers import only downward and no module cycle exists.

Every ``import`` of a cosma module by a cosma module counts, at module level or inside a function or an
``if TYPE_CHECKING:`` block, so a function-local import cannot hide a cycle. A module may import its own
layer only where that makes no cycle; the application layer may import lazily (start-up time), but still
only downward.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cosma"

#: Rooms by layer, lowest first; a module belongs to the longest prefix listed (docs/architecture.md).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cosma.errors", "cosma.units", "cosma.fileio", "cosma.progress"),
    ("cosma.graph", "cosma.hardware", "cosma.options", "cosma.provenance"),
    ("cosma.contract", "cosma.plan"),
    ("cosma.frontend", "cosma.schedule", "cosma.alloc", "cosma.replace", "cosma.budgets"),
    ("cosma.formulation",),
    ("cosma.backends",),
    ("cosma.methods",),
    (
        "cosma.viz",
        "cosma.memmap",
        "cosma.report",
        "cosma.runner",
        "cosma.sweep",
        "cosma.execute",
        "cosma.reproduce",
        "cosma.cli",
    ),
)
#: The package's front door re-exports the public API from every layer.
FACADE = "cosma"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, found = -1, None
    for i, rooms in enumerate(LAYERS):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and len(room) > best:
                best, found = len(room), i
    if found is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/architecture.md")
    return found


def imports_of(path: Path, module: str) -> set[str]:
    """The cosma modules ``path`` imports, anywhere in the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cosma")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "cosma":
                continue
            for a in node.names:  # `from cosma.x import y` may name the submodule cosma.x.y
                sub = f"{base}.{a.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES}


MODULES: dict[str, Path] = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for module, path in MODULES.items():
        for target in imports_of(path, module):
            if target != module and not module.startswith(target + "."):  # a package's own __init__ is no edge
                graph.add_edge(module, target)
    return graph


def room(module: str) -> str:
    """The room a module lives in: its top-level module or package under cosma."""
    return module.split(".")[1] if "." in module else module


def room_graph_mermaid() -> str:
    """The import graph between rooms as the mermaid block of docs/architecture.md, highest layer first."""
    edges: dict[str, set[str]] = {}
    for a, b in import_graph().edges:
        if a != FACADE and room(a) != room(b):
            edges.setdefault(room(a), set()).add(room(b))
    order = sorted(edges, key=lambda r: (-layer_of(f"cosma.{r}"), r))
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"  {a} --> {' & '.join(sorted(edges[a]))}" for a in order]
    return "\n".join([*lines, "```"])


def test_the_module_graph_in_the_docs_is_true() -> None:
    """docs/architecture.md draws the real import graph between rooms; regenerate it with room_graph_mermaid()."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    assert room_graph_mermaid() in doc, "docs/architecture.md's module graph is stale:\n" + room_graph_mermaid()


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module != FACADE:
            layer_of(module)


def test_layers_import_only_downward() -> None:
    upward = [
        f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
        for a, b in import_graph().edges
        if a != FACADE and layer_of(b) > layer_of(a)
    ]
    assert not upward, "imports that point up:\n" + "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    graph = import_graph()
    graph.remove_node(FACADE)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_nothing_below_the_facade_imports_it() -> None:
    importers = sorted(a for a, b in import_graph().edges if b == FACADE)
    assert not importers, f"{importers} import the package facade `cosma`; import the room instead"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from cosma.graph import Graph\n", {"cosma.graph"}),
        ("def f():\n    from cosma.plan import Plan\n", {"cosma.plan"}),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cosma.options import Options\n",
            {"cosma.options"},
        ),
        ("from cosma import graph\n", {"cosma.graph"}),
        ("from ..graph import Graph\n", {"cosma.graph"}),
    ],
)
def test_the_checker_sees_every_kind_of_import(tmp_path: Path, source: str, expected: set[str]) -> None:
    """The checker itself can fail: local, TYPE_CHECKING, submodule and relative imports all count."""
    folder = tmp_path / "cosma" / "methods"
    folder.mkdir(parents=True)
    path = folder / "probe.py"
    path.write_text(source)
    assert imports_of(path, "cosma.methods.probe") == expected

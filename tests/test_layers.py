"""The architecture, held: which room may import which, over the real import graph of edge/, train/ and
convert/ (imports inside functions included). docs/development.md draws the same picture in words."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

# Top to bottom: a room imports only rooms on lower lines. Rooms on one line are independent of each
# other (neither imports the other), except on the ground line, whose small shared leaves may use each other.
LAYERS = [
    ["convert"],
    ["train"],
    ["edge.__main__"],
    ["edge.cli"],
    ["edge.measure"],
    ["edge.pipeline"],
    ["edge.web", "edge.fleet"],
    ["edge.outputs"],
    ["edge.events"],
    ["edge.vision"],
    ["edge.sources"],
    ["edge.config"],
]
GROUND = ["edge.settings", "edge.contract", "edge.metrics", "edge.paths", "edge.addresses", "edge.timing", "edge.host",
          "edge.quiet", "edge.signals", "edge"]
PACKAGES = ("edge", "train", "convert")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ours that `name` imports, at the top or inside a function."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # `from edge.web import server` imports the module edge.web.server; `from edge.config import f`, edge.config
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name and not candidate.startswith(name + "."):
                targets.add(candidate)
    return targets


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def room_of(module: str) -> str:
    rooms = [room for line in LAYERS for room in line] + GROUND
    return max((room for room in rooms if module == room or module.startswith(room + ".")), key=len)


def layer_of(room: str) -> int:
    return next((index for index, line in enumerate(LAYERS) if room in line), len(LAYERS))


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            source_room, target_room = room_of(module), room_of(target)
            if source_room == target_room:
                continue
            above, below = layer_of(source_room), layer_of(target_room)
            if above > below:
                problems.append(f"{module} imports {target}: {source_room} may not import {target_room}, which sits above it")
            elif above == below and above < len(LAYERS):
                problems.append(f"{module} imports {target}: {source_room} and {target_room} are independent rooms")
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_every_import_runs_down_the_layers():
    assert layer_violations(import_graph()) == []


def test_every_module_belongs_to_a_declared_room():
    for module in import_graph():
        assert room_of(module), module


def test_the_checks_see_an_upward_import_a_lazy_import_and_a_circle(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for room in ("vision", "web", "fleet"):
        (tmp_path / "edge" / room).mkdir()
        (tmp_path / "edge" / room / "__init__.py").write_text("")
    (tmp_path / "edge" / "config.py").write_text("def f():\n    from edge.web import server\n")  # lazy and upward
    (tmp_path / "edge" / "web" / "server.py").write_text("from edge.config import f\nfrom ..fleet import topics\n")
    (tmp_path / "edge" / "fleet" / "topics.py").write_text("from edge import train_free\n")
    (tmp_path / "edge" / "vision" / "track.py").write_text("import train.fit\n")
    (tmp_path / "train" / "fit.py").write_text("")
    graph = import_graph(tmp_path)
    assert circles(graph) == [["edge.config", "edge.web.server"]]
    assert layer_violations(graph) == [
        "edge.config imports edge.web.server: edge.config may not import edge.web, which sits above it",
        "edge.vision.track imports train.fit: edge.vision may not import train, which sits above it",
        "edge.web.server imports edge.fleet.topics: edge.web and edge.fleet are independent rooms",
    ]


def test_a_shared_leaf_stays_small_and_the_top_of_edge_stays_short():
    top = sorted(path.stem for path in (ROOT / "edge").glob("*.py") if path.stem not in ("__init__", "__main__"))
    assert len(top) <= 14, top
    assert set(top) <= {room.removeprefix("edge.") for line in LAYERS for room in line} | {room.removeprefix("edge.") for room in GROUND}

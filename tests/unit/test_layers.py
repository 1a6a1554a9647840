"""Imports run one way: models <- sinks <- streams <- ops (docs/ARCHITECTURE.md).

Read from the source with ast, so a lazy import inside a function counts as much as one at the top.
The settings object and the metric definitions are leaf modules that any layer may import; they
themselves import nothing of the project but models.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("models", "sinks", "streams", "ops")
#: Leaf modules every layer may import.
LEAVES = frozenset({"ops.settings", "ops.metrics"})
#: Import loops tolerated while a change breaks them (each as its set of modules): none now.
KNOWN_LOOPS: frozenset[frozenset[str]] = frozenset()
#: Modules of no size above this, outside tests (the issue's "no module over ~600 lines").
MAX_LINES = 600


def modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The project modules `path` imports (absolute imports only; the project uses no relative ones)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names = [node.module or ""]
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in LAYERS}
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def violations(module: str, imports: set[str]) -> list[str]:
    """The imports of `module` that run up a layer (or out of a leaf)."""
    if module in LEAVES or module.split(".")[0] == "models":
        return sorted(i for i in imports if i.split(".")[0] != "models")
    own = layer_of(module)
    return sorted(
        i
        for i in imports
        if layer_of(i) > own and not any(i == leaf or i.startswith(leaf + ".") for leaf in LEAVES)
    )


def test_the_rule_itself() -> None:
    assert violations("sinks.kafka", {"models.events", "ops.settings", "sinks.errors"}) == []
    assert violations("sinks.kafka", {"streams.batch"}) == ["streams.batch"]
    assert violations("models.events", {"ops.settings"}) == ["ops.settings"]  # models import only models
    assert violations("streams.app", {"ops.runtime.wiring"}) == ["ops.runtime.wiring"]
    assert violations("ops.settings", {"models.rules", "sinks.kafka"}) == ["sinks.kafka"]
    assert violations("ops.cli", {"streams.app", "sinks.kafka", "models.events"}) == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_up_a_layer(path: Path) -> None:
    module = module_name(path)
    up = violations(module, imported(path))
    assert not up, f"{module} imports {up}: see docs/ARCHITECTURE.md for which layer may import which"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_too_long_to_read(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by what it does"


def module_graph() -> dict[str, set[str]]:
    """Each project module and the project modules it imports (at the top, inside functions or under
    TYPE_CHECKING alike). `from package import name` counts as importing the submodule when `name`
    is one, else the package: a package's own __init__ importing its submodules is no loop."""
    names = {module_name(path): path for path in modules()}

    def resolve(name: str) -> str | None:
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in names.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    whole = f"{node.module}.{alias.name}"
                    found.add(whole if whole in names else node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[module] = {m for m in map(resolve, found) if m is not None and m != module}
    return graph


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops of a graph: its strongly connected components of more than one module, each
    sorted (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return sorted(found)


def cycle_path(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One concrete loop through a strongly connected component: a -> b -> ... -> a."""
    inside = set(members)
    start = members[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & inside):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no loop through {members}")


def test_the_loop_finder_itself() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set(), "f": {"g"}, "g": {"f"}}
    assert loops(graph) == [["a", "b", "c"], ["f", "g"]]
    assert cycle_path(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert loops({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions_and_type_checking() -> None:
    graph = module_graph()
    assert "ops.staff.routes" in graph["ops.runtime.wiring"]
    assert "streams.day_result" in graph["streams.judgement"]  # imported under TYPE_CHECKING
    assert "ops.jobs.reports.weekly" in graph["ops.cli.reads"]  # imported inside a function
    assert "ops.cli" not in graph["ops.cli.parser"]  # `from ops.cli import credentials`: the submodule


def test_no_import_loop() -> None:
    graph = module_graph()
    found = [members for members in loops(graph) if frozenset(members) not in KNOWN_LOOPS]
    described = [
        f"  {' -> '.join(cycle_path(graph, members))} (the loop holds {', '.join(members)})"
        for members in found
    ]
    assert not found, "import loops (break each: move what both need below them):\n" + "\n".join(described)


def test_every_known_loop_is_still_there() -> None:
    """A known loop that is gone must leave KNOWN_LOOPS too, so that it cannot come back unseen."""
    present = {frozenset(members) for members in loops(module_graph())}
    gone = [sorted(known) for known in KNOWN_LOOPS if known not in present]
    assert not gone, f"these loops are broken: remove them from KNOWN_LOOPS: {gone}"


#: ops/ is split by purpose into rooms that import one way too (docs/ARCHITECTURE.md, "ops by purpose"):
#: what every HTTP surface shares (http) imports no room; the edge uses it and the jobs need only the
#: layers below; the staff surface uses the jobs' reports and the
#: edge's route names; the runtime wires all three; the command line and the development tools sit on
#: top (the tools never import the command line). The leaves (settings, metrics) serve every room.
OPS_ROOMS: dict[str, frozenset[str]] = {
    "http": frozenset(),
    "edge": frozenset({"http"}),
    "jobs": frozenset(),
    "staff": frozenset({"http", "edge", "jobs"}),
    "runtime": frozenset({"http", "edge", "jobs", "staff"}),
    "devtools": frozenset({"http", "edge", "jobs", "staff", "runtime"}),
    "cli": frozenset({"http", "edge", "jobs", "staff", "runtime", "devtools"}),
}


def room_of(module: str) -> str | None:
    """The ops room a module belongs to (None outside ops, for the package itself and the leaves)."""
    parts = module.split(".")
    if parts[0] != "ops" or len(parts) < 2 or any(module == f or module.startswith(f + ".") for f in LEAVES):
        return None
    return parts[1]


def room_violations(module: str, imports: set[str]) -> list[str]:
    """The imports of an ops module that reach a room it may not import."""
    own = room_of(module)
    if own is None:
        return []
    allowed = OPS_ROOMS[own] | {own}
    return sorted(i for i in imports if (room := room_of(i)) is not None and room not in allowed)


def test_the_room_rule_itself() -> None:
    assert room_violations("ops.staff.routes", {"ops.jobs.privacy", "ops.edge.endpoints"}) == []
    assert room_violations("ops.staff.auth.web", {"ops.runtime.client"}) == ["ops.runtime.client"]
    assert room_violations("ops.edge.collector", {"ops.staff.deps", "ops.metrics"}) == ["ops.staff.deps"]
    assert room_violations("ops.devtools.demo", {"ops.cli.common"}) == ["ops.cli.common"]
    assert room_violations("ops.settings", {"models.rules"}) == []
    assert room_violations("ops.edge.collector", {"ops.settings.Settings", "ops.metrics.Metrics"}) == []


def test_every_ops_room_is_named() -> None:
    rooms = {p.name for p in (ROOT / "ops").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == set(OPS_ROOMS), "a new room in ops/ needs its place in OPS_ROOMS and the map"


@pytest.mark.parametrize(
    "path",
    [p for p in modules() if p.parts[len(ROOT.parts)] == "ops"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_ops_rooms_import_one_way(path: Path) -> None:
    module = module_name(path)
    wrong = room_violations(module, imported(path))
    assert not wrong, f"{module} imports {wrong}: see docs/ARCHITECTURE.md for which room may import which"

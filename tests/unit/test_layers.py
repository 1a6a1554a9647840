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

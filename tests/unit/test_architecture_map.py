"""docs/ARCHITECTURE.md's module map matches the tree: every module is named, every name exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "docs" / "ARCHITECTURE.md"
LAYERS = ("models", "sinks", "streams", "ops")


def has_code(path: Path) -> bool:
    """A package's __init__ with nothing but a docstring needs no line of its own."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def test_every_module_is_on_the_map_and_every_entry_exists() -> None:
    named = set(re.findall(r"^- `((?:models|sinks|streams|ops)/[\w/]+\.py)`", MAP.read_text(), re.M))
    tree = {
        str(p.relative_to(ROOT))
        for layer in LAYERS
        for p in (ROOT / layer).rglob("*.py")
        if p.name != "__init__.py" or has_code(p)
    }
    assert sorted(tree - named) == [], "modules missing from docs/ARCHITECTURE.md"
    assert sorted(named - tree) == [], "docs/ARCHITECTURE.md names modules that do not exist"

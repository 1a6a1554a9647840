"""Process-wide settings every entry point gets by importing the ops package first."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = "import ops, numpy; print(numpy._core.multiarray._get_madvise_hugepage())"


def _hugepages(environment: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_numpy_huge_pages_are_off_unless_the_operator_asks() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    assert _hugepages(environment) == "False"


@pytest.mark.parametrize(("setting", "expected"), [("1", "True"), ("0", "False")])
def test_an_explicit_huge_page_setting_is_kept(setting: str, expected: str) -> None:
    assert _hugepages({**os.environ, "NUMPY_MADVISE_HUGEPAGE": setting}) == expected

"""Every report file is written inside its folder, owner-only (issue 22, items 6 and 8)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sinks.mail import DeliveryError, write_files


def test_files_land_in_the_folder_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "2026-W43"
    paths = write_files(folder, "S1042", {"html": "<p>x</p>", "pdf": b"%PDF"})
    assert paths == [folder.resolve() / "S1042.html", folder.resolve() / "S1042.pdf"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths} == {0o600}
    assert paths[1].read_bytes() == b"%PDF"


@pytest.mark.parametrize("stem", ["../../x", "/tmp/evil", "..", ".", "a/b", "a\\b", "", "a\x00b"])
def test_a_name_that_is_a_path_writes_nothing(tmp_path: Path, stem: str) -> None:
    folder = tmp_path / "reports"
    with pytest.raises(DeliveryError, match="not a plain file name") as refused:
        write_files(folder, stem, {"html": "x", "txt": "y"})
    assert refused.value.permanent
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # not even the folder


def test_a_symbolic_link_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    outside = tmp_path / "templates" / "page.html"
    outside.parent.mkdir()
    outside.write_text("original")
    (folder / "S1.html").symlink_to(outside)
    with pytest.raises(DeliveryError, match="outside"):
        write_files(folder, "S1", {"html": "{{ evil }}"})
    assert outside.read_text() == "original"

"""The weekly report's folder delivery never writes outside its folder (issue 22, item 6): a staff id
that reached it from before the loaders checked ids is refused, not used as a path."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from models.access import Staff
from models.reports import WeeklyReport
from ops.jobs.reports.weekly import FolderDelivery, Rendered
from sinks.mail import DeliveryError


def rendered(staff_id: str) -> Rendered:
    staff = Staff(staff_id, "A Tutor", "a.tutor@example.ac.uk", ())
    report = WeeklyReport(staff=staff, week_start=date(2026, 10, 19), trend_weeks=(), students=(), groups={})
    return Rendered(report, "<p>x</p>", "x", b"%PDF")


def test_a_staff_id_is_the_file_name_inside_the_weeks_folder(tmp_path: Path) -> None:
    delivery = FolderDelivery(tmp_path / "reports")
    assert delivery.deliver(rendered("S1042")) == "folder"
    assert sorted(p.name for p in delivery.written) == ["S1042.html", "S1042.pdf", "S1042.txt"]
    assert {p.parent.name for p in delivery.written} == {"2026-W43"}


@pytest.mark.parametrize("staff_id", ["../../x", "/tmp/lde-evil", "../templates/page"])
def test_a_staff_id_that_is_a_path_writes_nothing(tmp_path: Path, staff_id: str) -> None:
    delivery = FolderDelivery(tmp_path / "data" / "reports")
    with pytest.raises(DeliveryError) as refused:
        delivery.deliver(rendered(staff_id))
    assert refused.value.permanent
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not Path("/tmp/lde-evil.html").exists()

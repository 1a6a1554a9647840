"""The student's own view as a PDF (issue 27.4): their figures and attendance against the group named
once, whole sentences, any script; nothing but what the page shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.groups import compared_with
from ops.jobs.reports.own_pdf import FOOTNOTE, own_view_lines, own_view_pdf
from tests.unit.ops.jobs.test_pdf_fonts import bare, extracted

WEEKS = ["2026-11-09", "2026-11-16"]


def figures(name: str = "Ольга Иванова") -> dict[str, Any]:
    return {
        "student_id": "900000001",
        "name": name,
        "programme": "BSc (Hons) Computer Science",
        "year_of_study": 1,
        "mode": "FT",
        "as_of": "2026-11-22",
        "score": 41.0,
        "band": "Partial",
        "compared_with": compared_with("cohort", 12),
        "weeks": WEEKS,
        "activity": {
            "vle": {WEEKS[0]: {"student": 12, "average": 20.5}, WEEKS[1]: {"student": 3, "average": None}},
            "attendance": {WEEKS[0]: {"student": 4, "average": 4.0}},
        },
        "attendance": [
            {"week": WEEKS[0], "expected": 4, "attended": 3, "rate": 0.75, "average_rate": 0.8},
            {"week": WEEKS[1], "expected": 0, "attended": 0, "rate": None, "average_rate": 0.7},
        ],
    }


def test_attendance_comes_first_then_the_sources_by_weight() -> None:
    lines = own_view_lines(figures())
    assert lines[0] == ("Attendance", ["3/4 (75%)", "-"], ["80%", "70%"])
    assert lines[1] == ("VLE", ["12", "3"], ["20.5", "-"])
    assert len(lines) == 2  # attendance's sessions-expected counts are not an activity line


def test_the_pdf_holds_the_figures_the_group_named_once_and_the_footnote(tmp_path: Path) -> None:
    text = extracted(own_view_pdf(figures()), tmp_path)
    flat = bare(text)
    for whole in ("Your engagement, Ольга Иванова", compared_with("cohort", 12), FOOTNOTE, "3/4 (75%)"):
        assert bare(whole) in flat, whole
    assert flat.count(bare(compared_with("cohort", 12))) == 1
    assert "Partial" in text and "score 41 of 100" in text and "9 Nov" in text


def test_a_student_with_no_activity_is_told_so(tmp_path: Path) -> None:
    empty = {**figures("Carys Khan"), "activity": {}, "attendance": [], "score": None, "band": None}
    text = extracted(own_view_pdf(empty), tmp_path)
    assert "No activity recorded in these weeks." in text and "Not scored yet" in text

"""Every name in every script in the PDFs (issue 23.8): a report with students named in nine scripts
is rendered, and the text poppler's pdftotext extracts from it equals each name wherever a covering
font is installed (compared without spaces and direction marks, which pdftotext places by glyph
gaps); a script with no font installed is named in a warning, never skipped silently."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from models.access import Grant, Role, Staff
from models.reports import TREND_WEEKS, AlertLine, StudentWeek, WeeklyReport
from ops.jobs.reports.fonts import available_faces, needs_unicode, scripts_of, strings_of
from ops.jobs.reports.pdf import PdfReport

NAMES = {
    "latin": ("base", "Łukasz Żółć"),
    "greek": ("base", "Γιώργος Παπαδόπουλος"),
    "cyrillic": ("base", "Ольга Иванова"),
    "arabic": ("arabic", "محمد علي"),
    "devanagari": ("devanagari", "प्रिया शर्मा"),
    "tamil": ("tamil", "அருண் குமார்"),
    "thai": ("thai", "สมชาย ใจดี"),
    "chinese": ("cjk", "王伟"),
    "korean": ("cjk", "김민준"),
    "hebrew": ("hebrew", "דוד כהן"),
}
MONDAY = date(2026, 11, 9)


def student(i: int, name: str) -> StudentWeek:
    return StudentWeek(
        student_id=f"90000000{i}",
        name=name,
        programme_code="BSC-CS",
        programme_name="Computer Science",
        school="School of Computing",
        year_of_study=1,
        mode="full_time",
        personal_tutor_id="S1042",
        band="Low",
        score=12.0,
        week={"vle": 3},
        attended=0,
        trend=(1,) * TREND_WEEKS,
    )


def render(names: list[str]) -> bytes:
    staff = Staff("S9001", "Jo Marsh", "j.marsh@example.ac.uk", (Grant(Role.STUDENT_ENGAGEMENT_OFFICER),))
    report = WeeklyReport(
        staff=staff,
        week_start=MONDAY,
        trend_weeks=[MONDAY - timedelta(weeks=w) for w in range(TREND_WEEKS, 0, -1)],
        students=[student(i, n) for i, n in enumerate(names)],
        groups={},
    )
    return PdfReport(report, ("Weekly engagement report", "Jo Marsh", "Your students.")).render()


def extracted(pdf: bytes, tmp_path: Path) -> str:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext is not installed: apt-get install poppler-utils (as .ci/run does)"
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run([pdftotext, str(path), "-"], capture_output=True, text=True, check=True).stdout


def bare(text: str) -> str:
    """Without whitespace and bidirectional controls (pdftotext's additions)."""
    return re.sub(r"[\s\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", text)


def test_every_name_in_every_script_reads_back_from_the_pdf(tmp_path: Path) -> None:
    installed = available_faces()
    assert "base" in installed, "fontpkg-noto-sans is not installed: `make install` installs it"
    pdf = render([name for _, name in NAMES.values()])
    text = bare(extracted(pdf, tmp_path))
    lacking = []
    for script, (font, name) in NAMES.items():
        if font in installed:
            assert bare(name) in text, f"{script}: {name!r} not in the PDF's text"
        else:
            lacking.append(f"{script} ({name}: no {font} font installed)")
    if lacking:
        warnings.warn("scripts without a covering font: " + ", ".join(lacking), stacklevel=1)
    # the fonts of the wheels pyproject.toml names are there on any installation
    assert {"base", "arabic", "devanagari", "tamil", "thai"} <= set(installed)


def test_a_latin1_report_keeps_the_core_fonts(tmp_path: Path) -> None:
    pdf = render(["Carys Khan", "Zoë Brontë"])
    assert b"/FontFile2" not in pdf  # nothing embedded
    assert "Zoë Brontë" in extracted(pdf, tmp_path)


@pytest.mark.parametrize(
    ("texts", "scripts"),
    [
        (["Carys Khan", "Łukasz", "Ольга", "Γιώργος"], set()),
        (["محمد", "x"], {"arabic"}),
        (["王伟", "김민준", "さくら"], {"cjk"}),
        (["प्रिया", "அருண்", "สมชาย", "דוד"], {"devanagari", "tamil", "thai", "hebrew"}),
    ],
)
def test_scripts_of(texts: list[str], scripts: set[str]) -> None:
    assert scripts_of(texts) == scripts


def test_needs_unicode_and_strings_of() -> None:
    assert not needs_unicode(["Zoë", "Brontë"]) and needs_unicode(["Łukasz"])
    assert set(strings_of({"a": [student(1, "Łukasz")], "b": ("x",)})) >= {"Łukasz", "x", "BSC-CS", "a"}


def test_a_long_alert_is_wrapped_whole_never_cut_mid_sentence(tmp_path: Path) -> None:
    """Issue 27: the alert text was cut at 200 characters."""
    sentence = (
        "No recorded activity of any kind " + "and still nothing " * 20 + "ends here with the last word."
    )
    alerted = replace(student(0, "Carys Rowe"), alerts=(AlertLine(MONDAY, "no_engagement", sentence),))
    staff = Staff("S1", "Jo Marsh", "j@example.ac.uk", (Grant(Role.STUDENT_ENGAGEMENT_OFFICER),))
    report = WeeklyReport(
        staff=staff,
        week_start=MONDAY,
        trend_weeks=[MONDAY - timedelta(weeks=w) for w in range(TREND_WEEKS, 0, -1)],
        students=[alerted],
        groups={},
    )
    text = extracted(PdfReport(report, ("Weekly", "Jo Marsh", "Yours.")).render(), tmp_path)
    assert bare(sentence) in bare(text)

"""The student's own view as a PDF a tutor can give the student (issue 27.4): the same figures as the
page (ops.staff.web.student_view: their own and their group's averages only, no staff notes, no
alerts), drawn with the reports' PDF machinery and fonts (ops.jobs.reports.pdf). No I/O but fonts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from models.reports import REPORT_SOURCES, SOURCE_LABELS
from models.timebuckets import day_month
from ops.jobs.reports.format import number, percent
from ops.jobs.reports.pdf import PdfCanvas

#: Read by the student: what the figures are, and what they are not.
FOOTNOTE = (
    "Engagement figures count activity (learning platform, library, e-resources, printing, PC and "
    "remote logons, and attendance at timetabled sessions), not ability or grades. If something "
    "looks wrong, tell your personal tutor."
)


def own_view_lines(figures: Mapping[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    """(source label, the student's cells, the group's cells) per source, attendance first (sessions
    attended of those expected, and the rate; the group's rate), the others by weight. Pure."""
    weeks: Sequence[str] = figures["weeks"]
    out = []
    by_week = {a["week"]: a for a in figures["attendance"]}
    mine, theirs = [], []
    for week in weeks:
        a = by_week.get(week)
        if a is None or not a["expected"]:
            mine.append("-")
        else:
            mine.append(f"{a['attended']}/{a['expected']} ({percent(a['rate'])})")
        theirs.append(percent(a["average_rate"]) if a else "-")
    out.append(("Attendance", mine, theirs))
    activity: Mapping[str, Mapping[str, Mapping[str, float | None]]] = figures["activity"]
    for source in REPORT_SOURCES:
        if source == "attendance" or source not in activity:
            continue
        cells = activity[source]
        out.append(
            (
                SOURCE_LABELS[source],
                [str(int(cells.get(w, {}).get("student") or 0)) for w in weeks],
                [number(cells.get(w, {}).get("average")) for w in weeks],
            )
        )
    return out


class OwnViewPdf(PdfCanvas):
    """A landscape A4 page: who, the group said once, band and score, a table of weeks by source."""

    LEFT, RIGHT, TOP, BOTTOM = 36.0, 806.0, 40.0, 560.0
    LABEL_W = 150.0

    def __init__(self, figures: Mapping[str, Any]) -> None:
        self.figures = figures
        self.title = f"Your engagement, {figures['name'] or figures['student_id']}"
        self.lines = own_view_lines(figures)
        strings = [str(figures["name"]), str(figures["programme"]), str(figures["compared_with"])]
        super().__init__(strings, self.title)
        self.y = self.TOP

    def _para(self, text: str, size: float, style: str = "", gap: float = 4.0) -> None:
        self._font(style, size)
        for line in self._wrap(text, self.RIGHT - self.LEFT):  # whole sentences: never cut
            self.y += size * 1.3
            if self.y > self.BOTTOM:
                self._page()
                self._font(style, size)
                self.y += size * 1.3
            self._text(self.LEFT, self.y, line)
        self.y += gap

    def _page(self) -> None:
        self.pdf.add_page()
        self.y = self.TOP

    def render(self) -> bytes:
        f = self.figures
        self._page()
        self.pdf.set_text_color(17, 24, 39)
        self._para(self.title, 16, "B", 6)
        self._para(
            f"{f['programme']}, year {f['year_of_study']}, {f['mode']}. Figures up to "
            f"{date.fromisoformat(f['as_of']):%d %B %Y}.",
            10,
        )
        self._para(
            f"{f['compared_with']} Averages are shown only for groups of 8 or more; no other "
            "student's figures are shown.",
            10,
        )
        band = f["band"] or "Not scored yet"
        score = f" (score {number(f['score'], 0)} of 100)" if f["score"] is not None else ""
        self._para(f"Your engagement band: {band}{score}.", 11, "B", 10)
        self._table()
        self.pdf.set_text_color(75, 85, 99)
        self._para(FOOTNOTE, 8)
        return bytes(self.pdf.output())

    def _table(self) -> None:
        weeks: Sequence[str] = self.figures["weeks"]
        col = (self.RIGHT - self.LEFT - self.LABEL_W) / max(len(weeks), 1)
        pdf = self.pdf
        self._font("B", 8)
        self.y += 12
        self._text(self.LEFT, self.y, "Week of")
        for i, week in enumerate(weeks):
            self._text(self.LEFT + self.LABEL_W + i * col, self.y, day_month(date.fromisoformat(week)))
        pdf.set_draw_color(156, 163, 175)
        pdf.line(self.LEFT, self.y + 4, self.RIGHT, self.y + 4)
        self.y += 6
        if len(self.lines) == 1 and not any(c != "-" for c in self.lines[0][1]):
            self.y += 12
            self._font("", 9)
            self._text(self.LEFT, self.y, "No activity recorded in these weeks.")
        for label, mine, theirs in self.lines:
            if self.y + 30 > self.BOTTOM:
                self._page()
            for who, cells, style in ((f"{label}: you", mine, "B"), ("average of the group", theirs, "")):
                self.y += 12
                self._font(style, 8)
                self._text(self.LEFT + (0 if style else 10), self.y, who)
                for i, cell in enumerate(cells):
                    self._text(self.LEFT + self.LABEL_W + i * col, self.y, cell)
            pdf.set_draw_color(229, 231, 235)
            pdf.line(self.LEFT, self.y + 4, self.RIGHT, self.y + 4)
            self.y += 4
        self.y += 14


def own_view_pdf(figures: Mapping[str, Any]) -> bytes:
    """The PDF of the student's own view (the figures of ops.staff.web.student_view.own_figures)."""
    return OwnViewPdf(figures).render()

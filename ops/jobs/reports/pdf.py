"""The PDF of a report: a landscape A4 table drawn with fpdf2. No I/O but reading font files.

Drawn with fpdf2's low-level text and rectangle calls on a fixed grid (no flowing layout, no images).
A report whose text is all Latin-1 uses the core fonts (nothing to embed, which keeps a whole
institution's week of PDFs fast); any other embeds the fonts its scripts need (ops.jobs.reports.fonts).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from models.groups import BASIS_NAMES
from models.reports import (
    REPORT_SOURCES,
    SOURCE_LABELS,
    TREND_WEEKS,
    AlertLine,
    CohortLine,
    GroupWeek,
    StudentWeek,
    WeeklyReport,
)
from ops.jobs.reports.fonts import install as install_fonts
from ops.jobs.reports.fonts import strings_of
from ops.jobs.reports.format import (
    BAND_COLOURS,
    NOT_SCORED,
    STUDENT_BAR,
    day_month,
    number,
    percent,
    week_span,
)


def latin1(text: str) -> str:
    """fpdf2's core fonts are Latin-1: keep accents it has, transliterate or drop the rest."""
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        folded = unicodedata.normalize("NFKD", text)
        return "".join(c for c in folded if c.encode("latin-1", "ignore") and not unicodedata.combining(c))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


class PdfCanvas:
    """An A4 page in points with the fonts its text needs (ops.jobs.reports.fonts): text placed by
    its baseline and wrapped between words, never cut. What every LDE PDF shares."""

    def __init__(self, strings: Sequence[str], title: str, orientation: str = "L") -> None:
        self.pdf = FPDF(orientation=orientation, unit="pt", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_creator("LDE")
        self.family = install_fonts(self.pdf, [title, *strings])
        self.pdf.set_title(title if self.family else latin1(title))

    def _font(self, style: str, size: float) -> None:
        self.pdf.set_font(self.family or "Helvetica", style, size)

    def _text(self, x: float, y: float, text: str) -> None:
        """Text with its baseline at y: the core fonts' text call, or a cell (fpdf2 applies fallback
        fonts and shaping in cells only) placed so that its baseline falls at y."""
        pdf = self.pdf
        if self.family is None:
            pdf.text(x, y, latin1(text))
            return
        size = pdf.font_size
        pdf.set_xy(x, y - 0.8 * size)
        pdf.cell(h=size, text=text, new_x=XPos.RIGHT, new_y=YPos.TOP)

    def _measure(self, text: str) -> float:
        """The width of `text` in points in the current font: for the core fonts, summed from their
        widths table directly (fpdf2's own call costs more than the sum: a report measures thousands)."""
        if self.family is None:
            widths: dict[str, float] = self.pdf.current_font.cw  # type: ignore[union-attr, assignment]
            return sum(widths.get(c, 0.0) for c in text) * self.pdf.font_size_pt / 1000
        return float(self.pdf.get_string_width(text))

    def _wrap(self, text: str, width: float) -> list[str]:
        """Lines of at most `width` points in the current font, broken between words."""
        measure = self._measure
        shown = text if self.family else latin1(text)
        if measure(shown) <= width:  # most lines fit whole: one measure, not one per word
            return [shown] if shown else [""]
        lines: list[str] = []
        current = ""
        for word in shown.split():
            trial = f"{current} {word}" if current else word
            if current and measure(trial) > width:
                lines.append(current)
                current = word
            else:
                current = trial
        return [*lines, current] if current else lines or [""]


class PdfReport(PdfCanvas):
    """A landscape A4 table: one row per student (two when there are alerts to explain)."""

    LEFT, TOP, BOTTOM = 28.0, 30.0, 565.0
    ROW = 22.0
    COLS = {"name": 28.0, "band": 210.0, "src": 268.0, "trend": 640.0, "end": 814.0}
    SRC_W = 53.0

    def __init__(self, report: WeeklyReport, intro: tuple[str, str, str], own: bool = False) -> None:
        super().__init__([*intro[1:], *strings_of(report)], intro[0])
        self.own = own  # the student's own report: no case lines (staff's business)
        self.report = report
        self.scale = report.bars
        self.intro = intro
        self.y = 0.0
        self.page = 0

    def render(self) -> bytes:
        self._new_page(first=True)
        if self.report.cases and not self.own:
            self._cases()
            if not self.report.summary:
                self._column_heads()
        if self.report.summary:
            self._summary(self.report.summary)
            self._column_heads()
        if not self.report.students:
            self._font("", 10)
            self._text(self.LEFT, self.y + 12, "Nobody in your scope this week.")
        for s in self.report.students:
            self._student(s, self.report.groups.get(s.group))
        return bytes(self.pdf.output())

    def _new_page(self, first: bool = False) -> None:
        pdf = self.pdf
        pdf.add_page()
        self.page += 1
        title, who, lead = self.intro
        pdf.set_text_color(17, 24, 39)
        if first:
            self._font("B", 15)
            self._text(self.LEFT, self.TOP + 4, title)
            self._font("", 9)
            r = self.report
            self._text(self.LEFT, self.TOP + 18, f"{week_span(r.week_start, r.week_end)}.  {who}")
            pdf.set_text_color(75, 85, 99)
            y = self.TOP + 30
            for line in self._wrap(lead, self.COLS["end"] - self.LEFT):  # whole, wrapped: never cut
                self._text(self.LEFT, y, line)
                y += 10
            self.y = y
            if not self.report.summary and not (self.report.cases and not self.own):
                self._column_heads()
        else:
            self._font("", 7)
            pdf.set_text_color(107, 114, 128)
            self._text(self.LEFT, self.TOP - 8, f"{title} - {who} - page {self.page}")
            self.y = self.TOP
            self._column_heads()

    def _column_heads(self) -> None:
        pdf = self.pdf
        c = self.COLS
        self._font("B", 7)
        pdf.set_text_color(55, 65, 81)
        y = self.y + 8
        self._text(c["name"], y, "Student (most worrying first)")
        self._text(c["band"], y, "Band, score")
        for i, src in enumerate(REPORT_SOURCES):
            self._text(c["src"] + i * self.SRC_W, y, SOURCE_LABELS[src])
        self._text(c["trend"], y, "Activity per week, 8 weeks (line: group average)")
        self._font("", 6)
        self._text(
            c["src"],
            y + 8,
            "this week: student / average per student of their group, named under the student "
            "(- when under 8 students)",
        )
        self._text(c["trend"], y + 8, f"one scale for every row: full height {number(self.scale.trend)}")
        pdf.set_draw_color(156, 163, 175)
        pdf.line(self.LEFT, y + 11, c["end"], y + 11)
        self.y = y + 13

    def _summary(self, summary: Sequence[CohortLine]) -> None:
        pdf = self.pdf
        self._font("B", 9)
        pdf.set_text_color(17, 24, 39)
        self._text(self.LEFT, self.y + 10, "Cohort summary")
        self.y += 14
        bands = ["None", "Low", "Partial", "Good", "High", "Not scored"]
        heads = ["cohort", "students", *bands, "median score", "alerts this week"]
        xs = [self.LEFT, 150, 200, 240, 280, 325, 365, 405, 470, 540]
        self._font("B", 7)
        for x, h in zip(xs, heads, strict=True):
            self._text(x, self.y + 8, h)
        self.y += 10
        self._font("", 7)
        for line in summary:
            if self.y > self.BOTTOM - 60:
                self._new_page()
                self._font("", 7)
            values = [
                f"{line.programme_code} y{line.year_of_study} {line.mode}",
                str(line.students),
                *[str(line.bands.get(b, 0) or "") for b in bands],
                number(line.median_score),
                ", ".join(f"{r} {k}" for r, k in sorted(line.alerts.items())) or "-",
            ]
            widths = [b - a - 4 for a, b in zip(xs, [*xs[1:], self.COLS["end"]], strict=True)]
            cells = [self._wrap(v, w) for v, w in zip(values, widths, strict=True)]  # wrapped, never cut
            for x, lines in zip(xs, cells, strict=True):
                for k, text in enumerate(lines):
                    self._text(x, self.y + 8 + 8 * k, text)
            self.y += 10 + 8 * (max(len(lines) for lines in cells) - 1)
        self.y += 8

    def _cases(self) -> None:
        """Every open case needing action, overdue first: one wrapped line each (never cut)."""
        pdf = self.pdf
        listed = self.report.cases
        self._font("B", 9)
        pdf.set_text_color(17, 24, 39)
        self._text(self.LEFT, self.y + 10, f"Cases needing action ({len(listed)})")
        self.y += 14
        for s in listed:
            if s.case is None:
                continue
            self._font("", 7)
            text = f"{s.name or s.student_id} ({s.student_id}): {s.case.words()}"
            lines = self._wrap(text, self.COLS["end"] - self.LEFT)
            if self.y + 9 * len(lines) > self.BOTTOM - 40:
                self._new_page()
                self._font("", 7)
            pdf.set_text_color(122, 46, 14)
            for line in lines:
                self._text(self.LEFT, self.y + 8, line)
                self.y += 9
        self.y += 8

    @staticmethod
    def _alert_text(line: AlertLine) -> str:
        text = f"{line.raised_on} {line.rule}: {line.explanation}"
        return text + (f" [{line.action}]" if line.action else "")

    def _student(self, s: StudentWeek, group: GroupWeek | None) -> None:
        pdf = self.pdf
        c = self.COLS
        self._font("", 6.5)
        texts = [self._alert_text(a) for a in s.alerts]
        if s.case is not None and not self.own:
            texts.insert(0, s.case.words())
        notes = [self._wrap(text, c["end"] - c["name"] - 8) for text in texts]
        width = c["band"] - c["name"] - 4
        self._font("B", 8)
        names = self._wrap(s.name or s.student_id, width)  # wrapped, never cut
        self._font("", 6.5)
        word = BASIS_NAMES.get(group.basis, "group") if group else "group"
        about = self._wrap(
            f"{s.student_id}  {s.programme_code} y{s.year_of_study} {s.mode}; vs {word}", width
        )
        extra = 8 * (len(names) - 1) + 7 * (len(about) - 1)
        height = self.ROW + extra + 9 * sum(len(lines) for lines in notes)
        if self.y + height > self.BOTTOM:
            self._new_page()
        y = self.y
        pdf.set_text_color(17, 24, 39)
        self._font("B", 8)
        for k, text in enumerate(names):
            self._text(c["name"], y + 9 + 8 * k, text)
        self._font("", 6.5)
        pdf.set_text_color(75, 85, 99)
        for k, text in enumerate(about):
            self._text(c["name"], y + 17 + 8 * (len(names) - 1) + 7 * k, text)
        if s.band is not None:
            pdf.set_fill_color(*_rgb(BAND_COLOURS.get(s.band, NOT_SCORED)))
            pdf.rect(c["band"], y + 2, 32, 10, style="F")
            pdf.set_text_color(255, 255, 255)
            self._font("B", 7)
            self._text(c["band"] + 3, y + 9.5, s.band)
            pdf.set_text_color(17, 24, 39)
            self._font("", 8)
            if s.score is not None:
                self._text(c["band"] + 36, y + 9.5, f"{s.score:.0f}")
        else:
            self._font("", 7)
            self._text(c["band"], y + 9.5, "not scored")
        pdf.set_text_color(17, 24, 39)
        self._font("", 7)
        for i, src in enumerate(REPORT_SOURCES):
            if src == "attendance":
                average = group.attendance_rate if group else None
                text = f"{percent(s.attendance_rate)} / {percent(average)}"
            else:
                avg = group.week.get(src) if group else None
                text = f"{s.week.get(src, 0)} / {number(avg)}"
            self._text(c["src"] + i * self.SRC_W, y + 9.5, text)
        # trend: 8 bars (student), each with a group-average tick, on the report's one scale
        avg_trend = group.trend if group else (None,) * TREND_WEEKS
        top = self.scale.trend
        base = y + 17
        pdf.set_fill_color(*_rgb(STUDENT_BAR))
        pdf.set_draw_color(*_rgb("#6b7280"))
        for i, (v, a) in enumerate(zip(s.trend, avg_trend, strict=True)):
            x = c["trend"] + i * 14
            h = 15 * v / top
            if h > 0:
                pdf.rect(x, base - h, 9, h, style="F")
            if a is not None:
                ya = base - 15 * a / top
                pdf.line(x - 1, ya, x + 10, ya)
        self._font("", 6)
        pdf.set_text_color(75, 85, 99)
        self._text(c["trend"] + 8 * 14 + 4, y + 9, f"{s.trend[-1]} this week")
        self._text(c["trend"] + 8 * 14 + 4, y + 16, f"{day_month(self.report.trend_weeks[0])} to now")
        yy = y + self.ROW + extra
        if notes:
            pdf.set_text_color(180, 35, 24)
            self._font("", 6.5)
            for lines in notes:
                for text in lines:  # whole sentences, wrapped: never cut (issue 27)
                    self._text(c["name"] + 8, yy + 2, text)
                    yy += 9
        pdf.set_draw_color(229, 231, 235)
        pdf.line(self.LEFT, yy - 3, c["end"], yy - 3)
        self.y = yy

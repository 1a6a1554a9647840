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

from models.reports import (
    REPORT_SOURCES,
    SOURCE_LABELS,
    TREND_WEEKS,
    AlertLine,
    CohortLine,
    ProgrammeWeek,
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


class PdfReport:
    """A landscape A4 table: one row per student (two when there are alerts to explain)."""

    LEFT, TOP, BOTTOM = 28.0, 30.0, 565.0
    ROW = 22.0
    COLS = {"name": 28.0, "band": 210.0, "src": 268.0, "trend": 640.0, "end": 814.0}
    SRC_W = 53.0

    def __init__(
        self, report: WeeklyReport, intro: tuple[str, str, str], group_label: str = "programme"
    ) -> None:
        self.group_label = group_label
        self.report = report
        self.intro = intro
        self.pdf = FPDF(orientation="L", unit="pt", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_creator("LDE")
        self.family = install_fonts(self.pdf, [*intro, *strings_of(report)])
        self.pdf.set_title(intro[0] if self.family else latin1(intro[0]))
        self.y = 0.0
        self.page = 0

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

    def render(self) -> bytes:
        self._new_page(first=True)
        if self.report.summary:
            self._summary(self.report.summary)
            self._column_heads()
        if not self.report.students:
            self._font("", 10)
            self._text(self.LEFT, self.y + 12, "Nobody in your scope this week.")
        for s in self.report.students:
            self._student(s, self.report.programmes.get(s.programme_code))
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
            first_part, _, rest = lead.partition(" Programme averages")
            self._text(self.LEFT, self.TOP + 30, first_part)
            if rest:
                self._text(self.LEFT, self.TOP + 40, "Programme averages" + rest)
            self.y = self.TOP + 50
            if not self.report.summary:
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
        self._text(c["trend"], y, f"Activity per week, 8 weeks (line: {self.group_label} avg)")
        self._font("", 6)
        self._text(
            c["src"],
            y + 8,
            f"this week: student / {self.group_label} average per student (- when under 8 students)",
        )
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
            for x, v in zip(xs, values, strict=True):
                self._text(x, self.y + 8, v[:60])
            self.y += 10
        self.y += 8

    @staticmethod
    def _alert_text(line: AlertLine) -> str:
        text = f"{line.raised_on} {line.rule}: {line.explanation}"
        return text + (f" [{line.action}]" if line.action else "")

    def _wrap(self, text: str, width: float) -> list[str]:
        """Lines of at most `width` points in the current font, broken between words."""
        measure = self.pdf.get_string_width
        shown = text if self.family else latin1(text)
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

    def _student(self, s: StudentWeek, programme: ProgrammeWeek | None) -> None:
        pdf = self.pdf
        c = self.COLS
        self._font("", 6.5)
        notes = [self._wrap(self._alert_text(a), c["end"] - c["name"] - 8) for a in s.alerts]
        height = self.ROW + 9 * sum(len(lines) for lines in notes)
        if self.y + height > self.BOTTOM:
            self._new_page()
        y = self.y
        pdf.set_text_color(17, 24, 39)
        self._font("B", 8)
        self._text(c["name"], y + 9, (s.name or s.student_id)[:38])
        self._font("", 6.5)
        pdf.set_text_color(75, 85, 99)
        self._text(c["name"], y + 17, f"{s.student_id}  {s.programme_code} y{s.year_of_study} {s.mode}"[:48])
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
                average = programme.attendance_rate if programme else None
                text = f"{percent(s.attendance_rate)} / {percent(average)}"
            else:
                avg = programme.week.get(src) if programme else None
                text = f"{s.week.get(src, 0)} / {number(avg)}"
            self._text(c["src"] + i * self.SRC_W, y + 9.5, text)
        # trend: 8 bars (student), each with a programme-average tick
        avg_trend = programme.trend if programme else (None,) * TREND_WEEKS
        top = max([*s.trend, *(v or 0 for v in avg_trend), 1])
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
        yy = y + self.ROW
        if s.alerts:
            pdf.set_text_color(180, 35, 24)
            self._font("", 6.5)
            for lines in notes:
                for text in lines:  # whole sentences, wrapped: never cut (issue 27)
                    self._text(c["name"] + 8, yy + 2, text)
                    yy += 9
        pdf.set_draw_color(229, 231, 235)
        pdf.line(self.LEFT, yy - 3, c["end"], yy - 3)
        self.y = yy

"""Rendering reports and alerts: HTML email, plain text and PDF. No I/O.

Mail clients strip SVG, scripts and most CSS layout (Gmail, Outlook), so every chart is a table of
cells with `bgcolor`, `width` and `height` attributes, which all of them show. Gmail clips an HTML
body over about 100 KB, so the email lists at most `email_max_students` students, most worrying
first, and says so; the attached PDF always lists every student in scope.

Speed: one `Renderer` serves every report of a week and keeps each student's HTML and text fragment
(the same for every reader entitled to see that student), so a student seen by a tutor, a programme
leader, a director and the engagement officers is formatted once. PDFs are drawn with fpdf2's
low-level text and rectangle calls on a fixed grid (no flowing layout, no images, no fonts to embed).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from datetime import date

from fpdf import FPDF

from models.access import Role
from models.alerts import Alert
from models.reports import (
    REPORT_SOURCES,
    SOURCE_LABELS,
    TREND_WEEKS,
    CohortLine,
    ProgrammeWeek,
    StudentWeek,
    WeeklyReport,
)

BAND_COLOURS: dict[str, str] = {
    "High": "#1a7f37",
    "Good": "#5b9a3c",
    "Partial": "#c7901a",
    "Low": "#d1570f",
    "None": "#b42318",
}
NOT_SCORED = "#6b7280"
STUDENT_BAR = "#2b5fab"
AVERAGE_BAR = "#b8c4d6"
BAR_WIDTH = 120  # px of the longest bar of a source row
TREND_HEIGHT = 36  # px of the tallest trend bar

STYLE = (
    "body{margin:0;padding:0;background:#f3f4f6;font-family:Arial,Helvetica,sans-serif;color:#111827}"
    "td{font-family:Arial,Helvetica,sans-serif;font-size:13px}"
    ".m{color:#4b5563;font-size:12px}.s{font-size:11px;color:#4b5563}"
    ".n{text-align:right;padding:1px 6px;white-space:nowrap}"
    ".l{padding:1px 6px 1px 0;white-space:nowrap}"
    ".card{background:#ffffff;border:1px solid #d1d5db;margin:0 0 12px 0}"
    ".al{font-size:12px;padding:2px 0}.sum td{border-bottom:1px solid #e5e7eb;padding:3px 6px}"
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value != int(value) else f"{int(value)}"


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def _day(d: date) -> str:
    return f"{d.day} {d:%b}"


def week_span(start: date, end: date) -> str:
    return f"{start.day} {start:%B} to {end.day} {end:%B %Y}"


def _band_html(student: StudentWeek) -> str:
    if student.band is None:
        return f'<span style="color:{NOT_SCORED}">not scored</span>'
    colour = BAND_COLOURS.get(student.band, NOT_SCORED)
    score = f" &nbsp;<b>{student.score:.0f}</b>/100" if student.score is not None else ""
    return (
        f'<span style="background:{colour};color:#ffffff;padding:2px 8px;font-weight:bold">'
        f"{_e(student.band)}</span>{score}"
    )


def _hbar(width: int, colour: str) -> str:
    if width <= 0:
        return ""
    return (
        f'<table role="presentation" cellpadding="0" cellspacing="0"><tr><td width="{width}" height="6" '
        f'bgcolor="{colour}" style="font-size:0;line-height:0">&nbsp;</td></tr></table>'
    )


def _vbar(height: int, colour: str) -> str:
    """One bar of a column chart: its own table, so that its height is not stretched by its
    neighbour's (cells of one row share a height). A zero is a 1 px grey baseline."""
    if height < 1:
        height, colour = 1, "#d1d5db"
    return (
        '<td valign="bottom" width="9"><table role="presentation" cellpadding="0" cellspacing="0" '
        f'width="9"><tr><td width="9" height="{height}" bgcolor="{colour}" '
        'style="font-size:0;line-height:0">&nbsp;</td></tr></table></td>'
    )


class Renderer:
    """Formats one week's reports; caches each student's fragments (see the module docstring)."""

    def __init__(self, email_max_students: int = 25, group_label: str = "programme") -> None:
        self.email_max_students = email_max_students
        self.group_label = group_label
        self._html: dict[str, str] = {}
        self._text: dict[str, str] = {}
        self._pdf: dict[tuple[str, str, tuple[str, ...]], bytes] = {}

    # -- student fragments -------------------------------------------------------------------------
    def student_html(self, s: StudentWeek, programme: ProgrammeWeek | None, weeks: Sequence[date]) -> str:
        cached = self._html.get(s.student_id)
        if cached is not None:
            return cached
        rows = []
        for src in REPORT_SOURCES:
            if src == "attendance":
                mine_v: float | None = s.attendance_rate
                avg_v = programme.attendance_rate if programme else None
                mine_t, avg_t = _pct(mine_v), _pct(avg_v)
                label = f"{SOURCE_LABELS[src]} ({s.attended}/{s.week.get(src, 0)})"
            else:
                mine_v = float(s.week.get(src, 0))
                avg_v = programme.week.get(src) if programme else None
                mine_t, avg_t = _fmt(mine_v), _fmt(avg_v)
                label = SOURCE_LABELS[src]
            top = max(mine_v or 0.0, avg_v or 0.0)
            w_mine = round(BAR_WIDTH * (mine_v or 0) / top) if top else 0
            w_avg = round(BAR_WIDTH * (avg_v or 0) / top) if top else 0
            rows.append(
                f'<tr><td class="l">{_e(label)}</td><td class="n"><b>{mine_t}</b></td>'
                f'<td class="n m">{avg_t}</td><td width="{BAR_WIDTH}">'
                f"{_hbar(w_mine, STUDENT_BAR)}{_hbar(w_avg, AVERAGE_BAR)}</td></tr>"
            )
        avg_trend = programme.trend if programme else (None,) * TREND_WEEKS
        top_t = max([*s.trend, *(v or 0 for v in avg_trend), 1])
        bars = "".join(
            f'<td valign="bottom" align="center" style="padding:0 3px"><table role="presentation" '
            f'cellpadding="0" cellspacing="0"><tr valign="bottom">'
            f"{_vbar(round(TREND_HEIGHT * v / top_t), STUDENT_BAR)}"
            f'<td width="1" style="font-size:0">&nbsp;</td>'
            f"{_vbar(round(TREND_HEIGHT * (a or 0) / top_t), AVERAGE_BAR)}</tr></table></td>"
            for v, a in zip(s.trend, avg_trend, strict=True)
        )
        values = "".join(f'<td align="center" class="s">{v}</td>' for v in s.trend)
        labels = "".join(f'<td align="center" class="s">{_day(w)}</td>' for w in weeks)
        alerts = "".join(
            f'<div class="al"><b>{_e(a.rule)}</b> {_day(a.raised_on)}: {_e(a.explanation)}</div>'
            for a in s.alerts
        )
        fragment = (
            f'<table role="presentation" class="card" width="100%" cellpadding="8" cellspacing="0">'
            f'<tr><td><b style="font-size:15px">{_e(s.name or s.student_id)}</b> '
            f'<span class="m">{_e(s.student_id)} &middot; {_e(s.programme_code)} year {s.year_of_study} '
            f"{_e(s.mode)}</span></td>"
            f'<td align="right" style="white-space:nowrap">{_band_html(s)}</td></tr>'
            f'<tr><td colspan="2"><table role="presentation" cellpadding="0" cellspacing="0" width="100%">'
            f'<tr><td valign="top"><table role="presentation" cellpadding="0" cellspacing="0">'
            '<tr><td class="l s">this week</td><td class="n s">student</td>'
            f'<td class="n s">{self.group_label}</td>'
            f"<td></td></tr>{''.join(rows)}</table></td>"
            f'<td valign="top" align="right"><table role="presentation" cellpadding="0" cellspacing="0">'
            f'<tr><td colspan="{TREND_WEEKS}" class="s">activity per week, 8 weeks '
            f'(<span style="color:{STUDENT_BAR}">&#9632;</span> student, '
            f'<span style="color:{AVERAGE_BAR}">&#9632;</span> {self.group_label} average)</td></tr>'
            f'<tr valign="bottom" style="height:{TREND_HEIGHT}px">{bars}</tr><tr>{values}</tr>'
            f"<tr>{labels}</tr></table></td></tr></table>"
            + (f'<div style="padding-top:6px">{alerts}</div>' if alerts else "")
            + "</td></tr></table>"
        )
        self._html[s.student_id] = fragment
        return fragment

    def student_text(self, s: StudentWeek, programme: ProgrammeWeek | None) -> str:
        cached = self._text.get(s.student_id)
        if cached is not None:
            return cached
        standing = (
            f"{s.band}, score {s.score:.0f}/100"
            if s.band and s.score is not None
            else (s.band or "not scored")
        )
        parts = []
        for src in REPORT_SOURCES:
            if src == "attendance":
                avg = programme.attendance_rate if programme else None
                parts.append(
                    f"Attendance {_pct(s.attendance_rate)} "
                    f"({s.attended}/{s.week.get(src, 0)}; avg {_pct(avg)})"
                )
            else:
                avg_v = programme.week.get(src) if programme else None
                parts.append(f"{SOURCE_LABELS[src]} {s.week.get(src, 0)} (avg {_fmt(avg_v)})")
        avg_trend = programme.trend if programme else (None,) * TREND_WEEKS
        lines = [
            f"{s.name or s.student_id} ({s.student_id}), {s.programme_code} year {s.year_of_study} "
            f"{s.mode}: {standing}",
            "  this week: " + ", ".join(parts),
            "  activity per week, oldest first: "
            + " ".join(str(v) for v in s.trend)
            + "  (programme average: "
            + " ".join(_fmt(v, 0) for v in avg_trend)
            + ")",
        ]
        lines += [f"  ALERT {a.raised_on} {a.rule}: {a.explanation}" for a in s.alerts]
        text = "\n".join(lines)
        self._text[s.student_id] = text
        return text

    # -- whole reports -----------------------------------------------------------------------------
    def _intro(self, report: WeeklyReport) -> tuple[str, str, str]:
        staff = report.staff
        title = f"Weekly engagement report, {report.label}"
        who = f"For {staff.name} ({staff.staff_id}), {staff.describe()}"
        n = len(report.students)
        concern = sum(1 for s in report.students if s.concern_alerts or s.band in ("None", "Low"))
        lead = (
            f"{n} student{'s' if n != 1 else ''} in your scope, most worrying first; {concern} with an "
            f"alert this week or in band Low or None. Programme averages are per student on the programme, "
            f"shown only for programmes of 8 or more students."
        )
        return title, who, lead

    def html(self, report: WeeklyReport) -> str:
        title, who, lead = self._intro(report)
        shown = report.students[: self.email_max_students]
        cards = "".join(
            self.student_html(s, report.programmes.get(s.programme_code), report.trend_weeks) for s in shown
        )
        more = len(report.students) - len(shown)
        more_html = (
            f'<p class="m">{more} more student{"s" if more != 1 else ""} in your scope, in the same order, '
            f"are in the attached PDF, which lists everyone.</p>"
            if more > 0
            else ""
        )
        empty = '<p class="m">Nobody in your scope this week.</p>' if not report.students else ""
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" bgcolor="#f3f4f6">'
            '<tr><td align="center" style="padding:16px">'
            '<table role="presentation" width="760" cellpadding="0" cellspacing="0" style="max-width:760px">'
            '<tr><td style="padding:0 0 8px 0">'
            f'<div style="font-size:20px;font-weight:bold">{_e(title)}</div>'
            f'<div class="m">{week_span(report.week_start, report.week_end)}</div>'
            f'<div style="padding-top:6px">{_e(who)}</div><p class="m">{_e(lead)}</p></td></tr>'
            f"<tr><td>{self._summary_html(report.summary)}{empty}{cards}{more_html}"
            '<p class="s">Learner Digital Engagement. Personal data: for your role only; do not forward. '
            "This email's reading of student records is logged.</p></td></tr></table>"
            "</td></tr></table></body></html>"
        )

    def _summary_html(self, summary: Sequence[CohortLine] | None) -> str:
        if not summary:
            return ""
        bands = ["None", "Low", "Partial", "Good", "High", "Not scored"]
        head = "".join(f'<td class="n"><b>{b}</b></td>' for b in bands)
        rows = "".join(
            f"<tr><td>{_e(c.programme_code)} y{c.year_of_study} {_e(c.mode)}</td>"
            f'<td class="n">{c.students}</td>'
            + "".join(f'<td class="n">{c.bands.get(b, 0) or ""}</td>' for b in bands)
            + f'<td class="n">{_fmt(c.median_score)}</td>'
            f"<td>{_e(', '.join(f'{r} {k}' for r, k in sorted(c.alerts.items())) or '-')}</td></tr>"
            for c in summary
        )
        return (
            '<table role="presentation" class="card sum" width="100%" cellpadding="0" cellspacing="0">'
            f'<tr><td colspan="{len(bands) + 4}" style="font-weight:bold;padding:8px 6px">'
            "Cohort summary</td></tr>"
            f'<tr><td><b>cohort</b></td><td class="n"><b>students</b></td>{head}'
            f'<td class="n"><b>median score</b></td><td><b>alerts this week</b></td></tr>{rows}</table>'
        )

    def text(self, report: WeeklyReport) -> str:
        title, who, lead = self._intro(report)
        out = [title, week_span(report.week_start, report.week_end), who, "", lead, ""]
        if report.summary:
            out.append("Cohort summary (students; bands; median score; alerts this week):")
            for c in report.summary:
                bands = ", ".join(f"{b} {k}" for b, k in sorted(c.bands.items()))
                alerts = ", ".join(f"{r} {k}" for r, k in sorted(c.alerts.items())) or "none"
                out.append(
                    f"  {c.programme_code} y{c.year_of_study} {c.mode}: {c.students}; {bands}; "
                    f"{_fmt(c.median_score)}; {alerts}"
                )
            out.append("")
        shown = report.students[: self.email_max_students]
        for i, s in enumerate(shown, 1):
            out.append(f"{i}. " + self.student_text(s, report.programmes.get(s.programme_code)))
            out.append("")
        more = len(report.students) - len(shown)
        if more > 0:
            out.append(f"{more} more students are in the attached PDF, which lists everyone.")
        if not report.students:
            out.append("Nobody in your scope this week.")
        return "\n".join(out) + "\n"

    def pdf(self, report: WeeklyReport) -> bytes:
        """The PDF. Staff whose only roles cover whole groups (programme, school, institution) get a
        PDF headed by the scope rather than their name, so that identical scopes (the engagement
        officers all see the institution) are drawn once and shared; tutors' PDFs name them."""
        title, who, lead = self._intro(report)
        staff = report.staff
        if staff.operator or Role.PERSONAL_TUTOR in staff.roles:
            return PdfReport(report, (title, who, lead)).render()
        key = (report.label, staff.describe(), tuple(report.student_ids))
        cached = self._pdf.get(key)
        if cached is None:
            cached = PdfReport(report, (title, f"Scope: {staff.describe()}", lead)).render()
            self._pdf[key] = cached
        return cached


# -- PDF ---------------------------------------------------------------------------------------------
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
        self.pdf.set_title(latin1(intro[0]))
        self.y = 0.0
        self.page = 0

    def render(self) -> bytes:
        self._new_page(first=True)
        if self.report.summary:
            self._summary(self.report.summary)
            self._column_heads()
        if not self.report.students:
            self.pdf.set_font("Helvetica", "", 10)
            self.pdf.text(self.LEFT, self.y + 12, "Nobody in your scope this week.")
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
            pdf.set_font("Helvetica", "B", 15)
            pdf.text(self.LEFT, self.TOP + 4, latin1(title))
            pdf.set_font("Helvetica", "", 9)
            r = self.report
            pdf.text(self.LEFT, self.TOP + 18, latin1(f"{week_span(r.week_start, r.week_end)}.  {who}"))
            pdf.set_text_color(75, 85, 99)
            first_part, _, rest = lead.partition(" Programme averages")
            pdf.text(self.LEFT, self.TOP + 30, latin1(first_part))
            if rest:
                pdf.text(self.LEFT, self.TOP + 40, latin1("Programme averages" + rest))
            self.y = self.TOP + 50
            if not self.report.summary:
                self._column_heads()
        else:
            pdf.set_font("Helvetica", "", 7)
            pdf.set_text_color(107, 114, 128)
            pdf.text(self.LEFT, self.TOP - 8, latin1(f"{title} - {who} - page {self.page}"))
            self.y = self.TOP
            self._column_heads()

    def _column_heads(self) -> None:
        pdf = self.pdf
        c = self.COLS
        pdf.set_font("Helvetica", "B", 7)
        pdf.set_text_color(55, 65, 81)
        y = self.y + 8
        pdf.text(c["name"], y, "Student (most worrying first)")
        pdf.text(c["band"], y, "Band, score")
        for i, src in enumerate(REPORT_SOURCES):
            pdf.text(c["src"] + i * self.SRC_W, y, SOURCE_LABELS[src])
        pdf.text(c["trend"], y, f"Activity per week, 8 weeks (line: {self.group_label} avg)")
        pdf.set_font("Helvetica", "", 6)
        pdf.text(
            c["src"],
            y + 8,
            f"this week: student / {self.group_label} average per student (- when under 8 students)",
        )
        pdf.set_draw_color(156, 163, 175)
        pdf.line(self.LEFT, y + 11, c["end"], y + 11)
        self.y = y + 13

    def _summary(self, summary: Sequence[CohortLine]) -> None:
        pdf = self.pdf
        pdf.set_font("Helvetica", "B", 9)
        pdf.set_text_color(17, 24, 39)
        pdf.text(self.LEFT, self.y + 10, "Cohort summary")
        self.y += 14
        bands = ["None", "Low", "Partial", "Good", "High", "Not scored"]
        heads = ["cohort", "students", *bands, "median score", "alerts this week"]
        xs = [self.LEFT, 150, 200, 240, 280, 325, 365, 405, 470, 540]
        pdf.set_font("Helvetica", "B", 7)
        for x, h in zip(xs, heads, strict=True):
            pdf.text(x, self.y + 8, h)
        self.y += 10
        pdf.set_font("Helvetica", "", 7)
        for line in summary:
            if self.y > self.BOTTOM - 60:
                self._new_page()
                pdf.set_font("Helvetica", "", 7)
            values = [
                f"{line.programme_code} y{line.year_of_study} {line.mode}",
                str(line.students),
                *[str(line.bands.get(b, 0) or "") for b in bands],
                _fmt(line.median_score),
                ", ".join(f"{r} {k}" for r, k in sorted(line.alerts.items())) or "-",
            ]
            for x, v in zip(xs, values, strict=True):
                pdf.text(x, self.y + 8, latin1(v)[:60])
            self.y += 10
        self.y += 8

    def _student(self, s: StudentWeek, programme: ProgrammeWeek | None) -> None:
        pdf = self.pdf
        c = self.COLS
        height = self.ROW + 9 * len(s.alerts)
        if self.y + height > self.BOTTOM:
            self._new_page()
        y = self.y
        pdf.set_text_color(17, 24, 39)
        pdf.set_font("Helvetica", "B", 8)
        pdf.text(c["name"], y + 9, latin1(s.name or s.student_id)[:38])
        pdf.set_font("Helvetica", "", 6.5)
        pdf.set_text_color(75, 85, 99)
        pdf.text(
            c["name"], y + 17, latin1(f"{s.student_id}  {s.programme_code} y{s.year_of_study} {s.mode}")[:48]
        )
        if s.band is not None:
            pdf.set_fill_color(*_rgb(BAND_COLOURS.get(s.band, NOT_SCORED)))
            pdf.rect(c["band"], y + 2, 32, 10, style="F")
            pdf.set_text_color(255, 255, 255)
            pdf.set_font("Helvetica", "B", 7)
            pdf.text(c["band"] + 3, y + 9.5, s.band)
            pdf.set_text_color(17, 24, 39)
            pdf.set_font("Helvetica", "", 8)
            if s.score is not None:
                pdf.text(c["band"] + 36, y + 9.5, f"{s.score:.0f}")
        else:
            pdf.set_font("Helvetica", "", 7)
            pdf.text(c["band"], y + 9.5, "not scored")
        pdf.set_text_color(17, 24, 39)
        pdf.set_font("Helvetica", "", 7)
        for i, src in enumerate(REPORT_SOURCES):
            if src == "attendance":
                text = f"{_pct(s.attendance_rate)} / {_pct(programme.attendance_rate if programme else None)}"
            else:
                avg = programme.week.get(src) if programme else None
                text = f"{s.week.get(src, 0)} / {_fmt(avg)}"
            pdf.text(c["src"] + i * self.SRC_W, y + 9.5, text)
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
        pdf.set_font("Helvetica", "", 6)
        pdf.set_text_color(75, 85, 99)
        pdf.text(c["trend"] + 8 * 14 + 4, y + 9, latin1(f"{s.trend[-1]} this week"))
        pdf.text(c["trend"] + 8 * 14 + 4, y + 16, latin1(f"{_day(self.report.trend_weeks[0])} to now"))
        yy = y + self.ROW
        if s.alerts:
            pdf.set_text_color(180, 35, 24)
            pdf.set_font("Helvetica", "", 6.5)
            for line in s.alerts:
                text = f"{line.raised_on} {line.rule}: {line.explanation}"
                pdf.text(c["name"] + 8, yy + 2, latin1(text)[:200])
                yy += 9
        pdf.set_draw_color(229, 231, 235)
        pdf.line(self.LEFT, yy - 3, c["end"], yy - 3)
        self.y = yy


# -- alerts ------------------------------------------------------------------------------------------
def alert_subject(alert: Alert, student_name: str) -> str:
    rule = alert.rule.value.replace("_", " ")
    return f"LDE alert: {rule} - {student_name or alert.student_id} ({alert.student_id})"


def alert_text(alert: Alert, student_name: str, recipient: str) -> str:
    lines = [
        f"Dear {recipient},",
        "",
        f"{student_name or alert.student_id} ({alert.student_id}), {alert.programme_code} year "
        f"{alert.year_of_study} {alert.mode}, raised on {alert.raised_on}:",
        "",
        f"  {alert.rule.value}: {alert.explanation}",
    ]
    if alert.band:
        lines.append(
            f"  Engagement: {alert.band}" + (f", score {alert.score:.0f}/100" if alert.score else "")
        )
    lines += ["", "Learner Digital Engagement. Personal data: for your role only; do not forward."]
    return "\n".join(lines) + "\n"


def alert_html(alert: Alert, student_name: str, recipient: str) -> str:
    colour = BAND_COLOURS.get(alert.band or "", NOT_SCORED)
    band = (
        f'<p>Engagement: <span style="background:{colour};color:#fff;padding:1px 6px">{_e(alert.band)}</span>'
        + (f" score {alert.score:.0f}/100" if alert.score else "")
        + "</p>"
        if alert.band
        else ""
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px">'
        f"<p>Dear {_e(recipient)},</p><p><b>{_e(student_name or alert.student_id)}</b> "
        f"({_e(alert.student_id)}), {_e(alert.programme_code)} year {alert.year_of_study} {_e(alert.mode)}, "
        f"raised on {alert.raised_on}:</p><p><b>{_e(alert.rule.value)}</b>: {_e(alert.explanation)}</p>{band}"
        '<p style="color:#6b7280;font-size:12px">Learner Digital Engagement. Personal data: for your role '
        "only; do not forward.</p></body></html>"
    )

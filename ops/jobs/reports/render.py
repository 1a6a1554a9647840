"""Rendering reports and alerts as HTML email and plain text (the PDF is ops.jobs.reports.pdf). No I/O.

Mail clients strip SVG, scripts and most CSS layout (Gmail, Outlook), so every chart is a table of
cells with `bgcolor`, `width` and `height` attributes, which all of them show. Gmail clips an HTML
body over about 100 KB, so the email lists at most `email_max_students` students, most worrying
first, and says so; the attached PDF always lists every student in scope.

Speed: one `Renderer` serves every report of a week and keeps each student's HTML and text fragment
(the same for every reader entitled to see that student), so a student seen by a tutor, a programme
leader, a director and the engagement officers is formatted once; PDFs whose heading names a scope
rather than a person are drawn once per scope.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, timedelta

from models.access import Role
from models.alerts import Alert
from models.groups import BASIS_NAMES, report_comparison
from models.report_cases import ReportCase
from models.reports import (
    REPORT_SOURCES,
    SOURCE_LABELS,
    TREND_WEEKS,
    CohortLine,
    GroupWeek,
    ReportScale,
    StudentWeek,
    WeeklyReport,
)
from ops.jobs.reports.format import (
    AVERAGE_BAR,
    BAND_COLOURS,
    NOT_SCORED,
    STUDENT_BAR,
    day_month,
    number,
    percent,
    week_span,
)
from ops.jobs.reports.pdf import PdfReport

BAR_WIDTH = 120  # px of a bar at the report's scale (ReportScale: the same for every row)
TREND_HEIGHT = 36  # px of the tallest trend bar

STYLE = (
    "body{margin:0;padding:0;background:#f3f4f6;font-family:Arial,Helvetica,sans-serif;color:#111827}"
    "td{font-family:Arial,Helvetica,sans-serif;font-size:13px}"
    ".m{color:#4b5563;font-size:12px}.s{font-size:11px;color:#4b5563}"
    ".n{text-align:right;padding:1px 6px;white-space:nowrap}"
    ".l{padding:1px 6px 1px 0;white-space:nowrap}"
    ".card{background:#ffffff;border:1px solid #d1d5db;margin:0 0 12px 0}"
    ".al{font-size:12px;padding:2px 0}.sum td{border-bottom:1px solid #e5e7eb;padding:3px 6px}"
    ".case{font-size:12px;padding:2px 0;color:#7a2e0e}"
)
#: A group's name in a column head: "cohort", "programme", ...
GROUP_WORD = BASIS_NAMES


def group_word(group: GroupWeek | None) -> str:
    return GROUP_WORD.get(group.basis, "group") if group else "group"


def case_flags(case: ReportCase) -> str:
    """What a case asks for, in a few words (the case list's second column)."""
    flags = []
    if case.overdue:
        flags.append("overdue")
    elif case.awaiting_since is not None:
        flags.append("awaiting action")
    if case.follow_up_due and case.follow_up is not None:
        flags.append(f"follow-up due {day_month(case.follow_up)}")
    return ", ".join(flags) or case.status


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


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

    def __init__(self, email_max_students: int = 25, min_group: int = 8, own: bool = False) -> None:
        self.email_max_students = email_max_students
        self.min_group = min_group
        self.own = own  # the student's own report: "your cohort", no case (staff's business)
        self._html: dict[tuple[str, ReportScale], str] = {}
        self._text: dict[str, str] = {}
        self._pdf: dict[tuple[str, str, tuple[str, ...]], bytes] = {}

    # -- student fragments -------------------------------------------------------------------------
    def student_html(
        self, s: StudentWeek, group: GroupWeek | None, weeks: Sequence[date], scale: ReportScale
    ) -> str:
        cached = self._html.get((s.student_id, scale))
        if cached is not None:
            return cached
        word = group_word(group)
        rows = []
        for src in REPORT_SOURCES:
            if src == "attendance":
                mine_v: float | None = s.attendance_rate
                avg_v = group.attendance_rate if group else None
                mine_t, avg_t = percent(mine_v), percent(avg_v)
                label = f"{SOURCE_LABELS[src]} ({s.attended}/{s.week.get(src, 0)})"
            else:
                mine_v = float(s.week.get(src, 0))
                avg_v = group.week.get(src) if group else None
                mine_t, avg_t = number(mine_v), number(avg_v)
                label = SOURCE_LABELS[src]
            full = scale.source(src)
            w_mine = min(BAR_WIDTH, round(BAR_WIDTH * (mine_v or 0) / full))
            w_avg = min(BAR_WIDTH, round(BAR_WIDTH * (avg_v or 0) / full))
            rows.append(
                f'<tr><td class="l">{_e(label)}</td><td class="n"><b>{mine_t}</b></td>'
                f'<td class="n m">{avg_t}</td><td width="{BAR_WIDTH}">'
                f"{_hbar(w_mine, STUDENT_BAR)}{_hbar(w_avg, AVERAGE_BAR)}</td></tr>"
            )
        avg_trend = group.trend if group else (None,) * TREND_WEEKS
        top_t = scale.trend
        bars = "".join(
            f'<td valign="bottom" align="center" style="padding:0 3px"><table role="presentation" '
            f'cellpadding="0" cellspacing="0"><tr valign="bottom">'
            f"{_vbar(round(TREND_HEIGHT * v / top_t), STUDENT_BAR)}"
            f'<td width="1" style="font-size:0">&nbsp;</td>'
            f"{_vbar(round(TREND_HEIGHT * (a or 0) / top_t), AVERAGE_BAR)}</tr></table></td>"
            for v, a in zip(s.trend, avg_trend, strict=True)
        )
        values = "".join(f'<td align="center" class="s">{v}</td>' for v in s.trend)
        labels = "".join(f'<td align="center" class="s">{day_month(w)}</td>' for w in weeks)
        alerts = "".join(
            f'<div class="al"><b>{_e(a.rule)}</b> {day_month(a.raised_on)}: {_e(a.explanation)}'
            f"<br><i>{_e(a.action or 'no action recorded yet')}</i></div>"
            for a in s.alerts
        )
        case = (
            f'<div class="case"><b>{_e(case_flags(s.case))}</b>: {_e(s.case.words())}</div>'
            if s.case is not None and not self.own
            else ""
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
            f'<td class="n s">{word} average</td>'
            f"<td></td></tr>{''.join(rows)}</table></td>"
            f'<td valign="top" align="right"><table role="presentation" cellpadding="0" cellspacing="0">'
            f'<tr><td colspan="{TREND_WEEKS}" class="s">activity per week, 8 weeks '
            f'(<span style="color:{STUDENT_BAR}">&#9632;</span> student, '
            f'<span style="color:{AVERAGE_BAR}">&#9632;</span> {word} average; '
            f"full height {number(top_t)})</td></tr>"
            f'<tr valign="bottom" style="height:{TREND_HEIGHT}px">{bars}</tr><tr>{values}</tr>'
            f"<tr>{labels}</tr></table></td></tr></table>"
            + case
            + (f'<div style="padding-top:6px">{alerts}</div>' if alerts else "")
            + "</td></tr></table>"
        )
        self._html[(s.student_id, scale)] = fragment
        return fragment

    def student_text(self, s: StudentWeek, group: GroupWeek | None) -> str:
        cached = self._text.get(s.student_id)
        if cached is not None:
            return cached
        standing = (
            f"{s.band}, score {s.score:.0f}/100"
            if s.band and s.score is not None
            else (s.band or "not scored")
        )
        parts = []
        word = group_word(group)
        for src in REPORT_SOURCES:
            if src == "attendance":
                avg = group.attendance_rate if group else None
                parts.append(
                    f"Attendance {percent(s.attendance_rate)} "
                    f"({s.attended}/{s.week.get(src, 0)}; avg {percent(avg)})"
                )
            else:
                avg_v = group.week.get(src) if group else None
                parts.append(f"{SOURCE_LABELS[src]} {s.week.get(src, 0)} (avg {number(avg_v)})")
        avg_trend = group.trend if group else (None,) * TREND_WEEKS
        lines = [
            f"{s.name or s.student_id} ({s.student_id}), {s.programme_code} year {s.year_of_study} "
            f"{s.mode}: {standing}",
            "  this week: " + ", ".join(parts),
            "  activity per week, oldest first: "
            + " ".join(str(v) for v in s.trend)
            + f"  ({word} average: "
            + " ".join(number(v, 0) for v in avg_trend)
            + ")",
        ]
        if s.case is not None and not self.own:
            lines.append(f"  CASE ({case_flags(s.case)}): {s.case.words()}")
        for a in s.alerts:
            lines.append(f"  ALERT {a.raised_on} {a.rule}: {a.explanation}")
            lines.append(f"    action: {a.action or 'none recorded yet'}")
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
        totals = report.case_totals
        lead = (
            f"{n} student{'s' if n != 1 else ''} in your scope, most worrying first; {concern} with an "
            f"alert this week or in band Low or None. Open cases: {totals.open}, of which "
            f"{totals.awaiting_action} await action ({totals.overdue} overdue) and {totals.follow_up_due} "
            f"have a follow-up due by {day_month(report.week_end + timedelta(days=7))}; every open case is "
            f"listed each week until it is resolved. {report_comparison(self.min_group)} Averages are per "
            f"student, shown only for groups of {self.min_group} or more students."
        )
        return title, who, lead

    def html(self, report: WeeklyReport) -> str:
        title, who, lead = self._intro(report)
        shown = report.students[: self.email_max_students]
        scale = report.bars
        cards = "".join(
            self.student_html(s, report.groups.get(s.group), report.trend_weeks, scale) for s in shown
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
            f"<tr><td>{self._cases_html(report)}{self._summary_html(report.summary)}{empty}{cards}{more_html}"
            '<p class="s">Learner Digital Engagement. Personal data: for your role only; do not forward. '
            "This email's reading of student records is logged.</p></td></tr></table>"
            "</td></tr></table></body></html>"
        )

    def _cases_html(self, report: WeeklyReport) -> str:
        """Every open case that needs action (overdue first), whether or not its student's card fits
        in the email: an open case reappears every Monday until it is resolved."""
        listed = report.cases
        if not listed or self.own:
            return ""
        rows = "".join(
            f'<tr><td><b>{_e(s.name or s.student_id)}</b> <span class="m">{_e(s.student_id)}</span></td>'
            f"<td><b>{_e(case_flags(s.case))}</b></td><td>{_e(s.case.words())}</td></tr>"
            for s in listed
            if s.case is not None
        )
        return (
            '<table role="presentation" class="card sum" width="100%" cellpadding="0" cellspacing="0">'
            '<tr><td colspan="3" style="font-weight:bold;padding:8px 6px">'
            f"Cases needing action ({len(listed)})</td></tr>"
            "<tr><td><b>student</b></td><td><b>what is due</b></td><td><b>the case</b></td></tr>"
            f"{rows}</table>"
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
            + f'<td class="n">{number(c.median_score)}</td>'
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
                    f"{number(c.median_score)}; {alerts}"
                )
            out.append("")
        if report.cases and not self.own:
            out.append(f"Cases needing action ({len(report.cases)}):")
            for s in report.cases:
                if s.case is not None:
                    case = s.case
                    out.append(
                        f"  {s.name or s.student_id} ({s.student_id}): {case_flags(case)}. {case.words()}"
                    )
            out.append("")
        shown = report.students[: self.email_max_students]
        for i, s in enumerate(shown, 1):
            out.append(f"{i}. " + self.student_text(s, report.groups.get(s.group)))
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


def announcement_subject(alerts: Sequence[Alert], student_name: str) -> str:
    """One message's subject: the alert's own, or every rule of the student's day (issue 24.5)."""
    if len(alerts) == 1:
        return alert_subject(alerts[0], student_name)
    rules = ", ".join(a.rule.value.replace("_", " ") for a in alerts)
    lead = alerts[0]
    return f"LDE alerts: {rules} - {student_name or lead.student_id} ({lead.student_id})"


def announcement_text(alerts: Sequence[Alert], student_name: str, recipient: str) -> str:
    """One message for a student's alerts of one day: the first in full, the others' rule and words."""
    text = alert_text(alerts[0], student_name, recipient)
    if len(alerts) == 1:
        return text
    body, footer = text.rsplit("\n\n", 1)
    more = "".join(f"\n  {a.rule.value}: {a.explanation}" for a in alerts[1:])
    return f"{body}{more}\n\n{footer}"


def announcement_html(alerts: Sequence[Alert], student_name: str, recipient: str) -> str:
    """The HTML of announcement_text."""
    html = alert_html(alerts[0], student_name, recipient)
    if len(alerts) == 1:
        return html
    more = "".join(f"<p><b>{_e(a.rule.value)}</b>: {_e(a.explanation)}</p>" for a in alerts[1:])
    at = html.index('<p style="color:#6b7280')
    return html[:at] + more + html[at:]

"""What the HTML, text and PDF renderings of a report share: the band colours and the figure formats.

No I/O: used by ops.jobs.reports.render (HTML email and text) and ops.jobs.reports.pdf (the PDF).
"""

from __future__ import annotations

from datetime import date

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


def number(value: float | None, digits: int = 1) -> str:
    """A figure with up to `digits` decimals (none for a whole number); "-" when there is none."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value != int(value) else f"{int(value)}"


def percent(rate: float | None) -> str:
    """A rate (0..1) as a whole percentage; "-" when there is none."""
    return "-" if rate is None else f"{100 * rate:.0f}%"


def day_month(d: date) -> str:
    """The day of a chart label, e.g. "16 Nov"."""
    return f"{d.day} {d:%b}"


def week_span(start: date, end: date) -> str:
    """The dates a report covers, e.g. "16 November to 22 November 2026"."""
    return f"{start.day} {start:%B} to {end.day} {end:%B %Y}"

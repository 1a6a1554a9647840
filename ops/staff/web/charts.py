"""Charts for the staff web app, drawn on the server as SVG: no script, no network, no library.

Pure: figures in, an SVG string out. Every chart is decorative for assistive technology
(`aria-hidden`): each page puts a table with the same figures next to it, so nothing is told by the
picture alone, and lines differ by dash as well as by colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import escape

#: Line styles: (stroke colour, dash pattern). Dark enough for 3:1 against white (WCAG 1.4.11).
STYLES: dict[str, tuple[str, str]] = {
    "student": ("#1d4ed8", ""),
    "average": ("#4b5563", "5 3"),
    "institution": ("#7c2d12", "2 2"),
}
#: Band fills, worst first (the table beside the chart names each band).
BAND_FILLS: dict[str, str] = {
    "None": "#991b1b",
    "Low": "#c2410c",
    "Partial": "#a16207",
    "Good": "#15803d",
    "High": "#1e40af",
    "Not scored": "#6b7280",
}


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a name for the legend, a value per x position (None: no figure), a style name."""

    name: str
    values: Sequence[float | None]
    style: str = "student"


def _scale(values: Sequence[float | None], floor: float = 1.0) -> float:
    present = [v for v in values if v is not None]
    return max([floor, *present])


def _points(
    values: Sequence[float | None], top: float, x0: float, dx: float, y0: float, h: float
) -> list[str]:
    """Polyline segments (a gap wherever a value is missing)."""
    segments: list[str] = []
    current: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            if current:
                segments.append(" ".join(current))
            current = []
            continue
        current.append(f"{x0 + i * dx:.1f},{y0 + h - (v / top) * h:.1f}")
    if current:
        segments.append(" ".join(current))
    return segments


def _value_axis(
    left: float,
    top_pad: float,
    plot_w: float,
    plot_h: float,
    top_label: str,
    unit: str = "",
    *,
    font_size: int,
    gap: int,
    top_drop: int,
) -> list[str]:
    """The value axis of a line chart: the baseline, and the top value and 0 (each followed by
    `unit`) right-aligned `gap` px left of the plot, the top value's baseline `top_drop` px below
    the plot's top edge."""
    label = f'text-anchor="end" font-size="{font_size}"'
    return [
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
        'stroke="#6b7280"/>',
        f'<text x="{left - gap}" y="{top_pad + top_drop}" {label}>{top_label}{unit}</text>',
        f'<text x="{left - gap}" y="{top_pad + plot_h}" {label}>0{unit}</text>',
    ]


def _lines(
    series: Sequence[Series], top: float, left: float, dx: float, top_pad: float, plot_h: float
) -> list[str]:
    """Each series as polylines in its style (a gap wherever a value is missing), 2.5 px wide."""
    drawn = []
    for s in series:
        colour, dash = STYLES.get(s.style, STYLES["student"])
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for seg in _points(s.values, top, left, dx, top_pad, plot_h):
            drawn.append(
                f'<polyline points="{seg}" fill="none" stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
            )
    return drawn


def sparkline(
    values: Sequence[float], average: Sequence[float | None], width: int = 120, height: int = 28
) -> str:
    """A small line of a student's weeks (solid) against the group average (dashed)."""
    top = _scale([*values, *average])
    n = max(len(values), 2)
    dx = (width - 4) / (n - 1)
    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">'
    ]
    for style, series in (("average", average), ("student", values)):
        colour, dash = STYLES[style]
        for seg in _points(series, top, 2, dx, 2, height - 4):
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<polyline points="{seg}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    series: Sequence[Series],
    labels: Sequence[str],
    *,
    spread: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    width: int = 640,
    height: int = 220,
    axis_top: float | None = None,
    unit: str = "",
) -> str:
    """Lines over labelled x positions, with an optional shaded spread (the quartiles) behind them.
    The axis runs from 0 to the highest value, or to `axis_top` when given (100 for a rate in per
    cent: a fixed scale, so 40% never looks like a full week); `unit` follows the axis labels."""
    left, bottom, top_pad, right = 44, 28, 10, 28
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    everything: list[float | None] = [v for s in series for v in s.values]
    if spread:
        everything += list(spread[1])
    top = _scale(everything) if axis_top is None else _scale(everything, axis_top)
    n = max(len(labels), 2)
    dx = plot_w / (n - 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet" '
        'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">',
        *_value_axis(left, top_pad, plot_w, plot_h, _number(top), unit, font_size=11, gap=6, top_drop=4),
    ]
    if spread:
        low, high = spread
        upper = [(i, v) for i, v in enumerate(high) if v is not None]
        lower = [(i, v) for i, v in enumerate(low) if v is not None]
        if upper and lower:
            pts = [f"{left + i * dx:.1f},{top_pad + plot_h - v / top * plot_h:.1f}" for i, v in upper]
            pts += [
                f"{left + i * dx:.1f},{top_pad + plot_h - v / top * plot_h:.1f}" for i, v in reversed(lower)
            ]
            parts.append(f'<polygon points="{" ".join(pts)}" fill="#e5e7eb" stroke="none"/>')
    step = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(
                f'<text x="{left + i * dx:.1f}" y="{height - 8}" text-anchor="middle" font-size="11">'
                f"{escape(label)}</text>"
            )
    parts += _lines(series, top, left, dx, top_pad, plot_h)
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(
    labels: Sequence[str],
    counts: Sequence[Mapping[str, int]],
    order: Sequence[str],
    width: int = 640,
    height: int = 220,
) -> str:
    """One bar per label, stacked by category in `order` (worst band at the bottom)."""
    left, bottom, top_pad = 44, 28, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max([1, *(sum(c.values()) for c in counts)])
    slot = plot_w / max(len(labels), 1)
    bar = slot * 0.7
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet" '
        'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" font-size="11">{top}</text>',
    ]
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        x = left + i * slot + (slot - bar) / 2
        y = float(top_pad + plot_h)
        for name in order:
            value = count.get(name, 0)
            if not value:
                continue
            h = value / top * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{BAND_FILLS.get(name, "#6b7280")}" stroke="#fff" stroke-width="1"/>'
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle" font-size="11">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


#: Marks on a timeline (issue 27): an alert (a dark red line with a triangle), a case action (a
#: green diamond), an absence (the week shaded). Told by shape and colour, and listed in the table.
MARK_COLOURS = {"alert": "#b91c1c", "action": "#15803d", "absence": "#e5e7eb"}


def timeline(
    series: Sequence[Series],
    labels: Sequence[str],
    marks: Sequence[Sequence[str]],
    *,
    width: int = 400,
    height: int = 170,
) -> str:
    """Weekly lines with what happened each week marked (kinds per position: alert, action,
    absence). Drawn at about the size it is shown at on a phone, so its dates (12 px, every other
    one when there are more than six) stay legible and never overlap."""
    left, bottom, top_pad, right = 34, 24, 16, 14
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    top = _scale([v for s in series for v in s.values])
    n = max(len(labels), 2)
    dx = plot_w / (n - 1)
    half = dx / 2
    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet" '
        'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, kinds in enumerate(marks):
        if "absence" in kinds:
            x0 = max(left, left + i * dx - half)
            x1 = min(left + plot_w, left + i * dx + half)
            parts.append(
                f'<rect x="{x0:.1f}" y="{top_pad}" width="{x1 - x0:.1f}" height="{plot_h}" '
                f'fill="{MARK_COLOURS["absence"]}"/>'
            )
    parts += _value_axis(left, top_pad, plot_w, plot_h, _number(top), font_size=12, gap=5, top_drop=5)
    step = 1 if len(labels) <= 6 else 2
    last = len(labels) - 1
    for i, label in enumerate(labels):
        if (last - i) % step == 0:  # the latest week always labelled
            anchor = "end" if i == last else "start" if i == 0 else "middle"
            parts.append(
                f'<text x="{left + i * dx:.1f}" y="{height - 6}" text-anchor="{anchor}" font-size="12">'
                f"{escape(label)}</text>"
            )
    for i, kinds in enumerate(marks):
        x = left + i * dx
        if "alert" in kinds:
            parts.append(
                f'<line x1="{x:.1f}" y1="{top_pad}" x2="{x:.1f}" y2="{top_pad + plot_h}" '
                f'stroke="{MARK_COLOURS["alert"]}" stroke-width="2"/>'
                f'<path d="M{x - 6:.1f},{top_pad - 12} L{x + 6:.1f},{top_pad - 12} L{x:.1f},{top_pad - 2} Z" '
                f'fill="{MARK_COLOURS["alert"]}"/>'
            )
        if "action" in kinds:
            y = top_pad + plot_h
            parts.append(
                f'<path d="M{x:.1f},{y - 7} L{x + 6:.1f},{y} L{x:.1f},{y + 7} L{x - 6:.1f},{y} Z" '
                f'fill="{MARK_COLOURS["action"]}" stroke="#fff"/>'
            )
    parts += _lines(series, top, left, dx, top_pad, plot_h)
    parts.append("</svg>")
    return "".join(parts)

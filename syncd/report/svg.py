"""The report page's charts: inline SVG that scales to its container (a ``viewBox``, CSS
width 100%), with labelled axes and a ``<title>`` and ``<desc>`` for screen readers.

Every text that comes from the store or the configuration is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 400
"""The drawing's width in its own units; the page scales it to its box (on a 400 px wide
screen the text is still 10 to 12 px high; on a wide one CSS caps the chart's width)."""


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    """What is written at the bar: the value, formatted."""
    note: str = ""
    """Written under the bar, in the gap before the next one (a conversion rate)."""
    css: str = "bar"


def _e(value: object) -> str:
    return escape(str(value))


def ticks(top: float, *, whole: bool = True) -> list[float]:
    """Round tick values from 0 to at least ``top``: about four steps of 1, 2 or 5 x 10^n."""
    if top <= 0:
        return [0, 1]
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1, round(step))
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def compact(value: float) -> str:
    """``0``, ``250``, ``1.5k``, ``2M``: short tick labels."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def svg(chart_id: str, title: str, desc: str, height: float, body: str) -> str:
    """One chart: labelled for assistive technology by its title and description."""
    return (
        f'<svg id="{_e(chart_id)}" class="chart" role="img" viewBox="0 0 {WIDTH} {height:g}"'
        f' aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc"'
        ' preserveAspectRatio="xMinYMin meet">'
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>'
        f'<desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>{body}</svg>'
    )


def bars(
    chart_id: str, title: str, desc: str, items: Sequence[Bar], *, axis: str, top: float
) -> str:
    """Horizontal bars, each with its label and value on the line above it, scaled to
    ``top`` (one scale for charts meant to be compared), over a labelled value axis."""
    left, right = 8, WIDTH - 8
    values = ticks(max(top, max((b.value for b in items), default=0)))
    scale = (right - left) / values[-1]
    rows, y = [], 4
    for bar in items:
        length = bar.value * scale
        rows.append(
            f'<text x="{left}" y="{y + 13}">{_e(bar.label)}</text>'
            f'<text x="{right}" y="{y + 13}" text-anchor="end" class="value">{_e(bar.text)}</text>'
            f'<rect class="{bar.css}" x="{left}" y="{y + 18}" width="{length:.1f}" height="14"'
            ' rx="2"/>'
        )
        y += 36
        if bar.note:
            rows.append(f'<text x="{left + 10}" y="{y + 10}" class="note">{_e(bar.note)}</text>')
            y += 16
    axis_y = y + 4
    parts = []  # the grid first: behind the bars
    for i, value in enumerate(values):
        x = left + value * scale
        anchor = "start" if i == 0 else "end" if i == len(values) - 1 else "middle"
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{axis_y}"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="{anchor}" class="tick">'
            f"{compact(value)}</text>"
        )
    parts += rows
    parts.append(
        f'<line class="axis" x1="{left}" y1="{axis_y}" x2="{right}" y2="{axis_y}"/>'
        f'<text x="{(left + right) / 2}" y="{axis_y + 32}" text-anchor="middle" class="axis-title">'
        f"{_e(axis)}</text>"
    )
    return svg(chart_id, title, desc, axis_y + 40, "".join(parts))


@dataclass(frozen=True)
class Column:
    label: str
    value: float
    text: str
    css: str = "bar"


def columns(
    chart_id: str,
    title: str,
    desc: str,
    items: Sequence[Column],
    *,
    x_axis: str,
    y_axis: str,
    marker: tuple[int, str] | None = None,
    whole: bool = True,
) -> str:
    """Vertical columns over labelled axes; ``marker`` (i, text) draws a dashed line
    after the i-th column (``id="{chart_id}-marker"``), e.g. the SLA."""
    left, right, top, plot_bottom = 48, WIDTH - 8, 26, 170
    values = ticks(max((c.value for c in items), default=0), whole=whole)
    scale = (plot_bottom - top) / values[-1]
    width = (right - left) / max(len(items), 1)
    stride = math.ceil(len(items) / 12)
    parts = []
    for value in values:
        y = plot_bottom - value * scale
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{compact(value)}</text>"
        )
    for i, column in enumerate(items):
        x, height = left + i * width, column.value * scale
        middle = x + width / 2
        parts.append(
            f'<rect class="{column.css}" x="{x + width * 0.15:.1f}" y="{plot_bottom - height:.1f}"'
            f' width="{width * 0.7:.1f}" height="{height:.1f}" rx="2">'
            f"<title>{_e(column.label)}: {_e(column.text)}</title></rect>"
        )
        if column.value:
            parts.append(
                f'<text x="{middle:.1f}" y="{plot_bottom - height - 4:.1f}" text-anchor="middle"'
                f' class="value small">{_e(column.text)}</text>'
            )
        if i % stride == 0:
            parts.append(
                f'<text x="{middle:.1f}" y="{plot_bottom + 14}" text-anchor="middle"'
                f' class="tick">{_e(column.label)}</text>'
            )
    if marker is not None:
        after, text = marker
        x = left + (after + 1) * width
        parts.append(
            f'<g id="{_e(chart_id)}-marker" class="marker"><line x1="{x:.1f}" y1="{top - 8}"'
            f' x2="{x:.1f}" y2="{plot_bottom}"/><text x="{x - 4:.1f}" y="{top - 12}"'
            f' text-anchor="end">{_e(text)}</text></g>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{plot_bottom}" x2="{right}" y2="{plot_bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{plot_bottom}"/>'
        f'<text x="{(left + right) / 2}" y="{plot_bottom + 34}" text-anchor="middle"'
        f' class="axis-title">{_e(x_axis)}</text>'
        f'<text transform="translate(12 {(top + plot_bottom) / 2}) rotate(-90)"'
        f' text-anchor="middle" class="axis-title">{_e(y_axis)}</text>'
    )
    return svg(chart_id, title, desc, plot_bottom + 42, "".join(parts))

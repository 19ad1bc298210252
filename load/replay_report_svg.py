"""Inline SVG charts for the replay report, drawn in Python so the page needs no script or network.

Every function is pure: data in, SVG markup out, every label HTML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from load.replay_report_model import Bin, RowTokens, nice_step

WIDTH = 640
HEIGHT = 320
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 28
MARGIN_BOTTOM = 80
MAX_X_LABELS = 16
MAX_LABEL_CHARS = 14
LABEL_CHAR_WIDTH = 7.0
MIN_FLAT_LABEL_CHARS = 12
SERIES_COLORS = ("#4e79a7", "#f28e2b")
ERROR_COLOR = "#e15759"
MAX_BAR_WIDTH = 56
RANGE_DASH = "\u2013"


@dataclass(frozen=True)
class Column:
    """One bar: its axis label, the stacked segment values (one per series) and a tooltip."""

    label: str
    segments: tuple[float, ...]
    tooltip: str


def format_number(value: float) -> str:
    """A compact axis or tooltip number: no decimals for whole or large values, else up to two."""
    if value == int(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def short_label(label: str, limit: int) -> str:
    """An axis label cut to fit under a bar; the tooltip keeps the whole text."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def axis_ticks(maximum: float) -> list[float]:
    """Round, whole tick values (counts and tokens) from zero to at least maximum."""
    step = max(1.0, math.ceil(nice_step(maximum, 5))) if maximum > 0 else 1.0
    top = max(step, math.ceil(maximum / step) * step)
    return [i * step for i in range(round(top / step) + 1)]


def _open_svg(chart_id: str, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]


def _empty_chart(chart_id: str, title: str, message: str) -> Markup:
    parts = _open_svg(chart_id, title)
    parts.append(
        f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
        f"{escape(message)}</text></svg>"
    )
    return Markup("".join(parts))


def column_chart(
    chart_id: str,
    title: str,
    columns: Sequence[Column],
    *,
    x_label: str,
    y_label: str,
    series: Sequence[str] = (),
    colors: Sequence[str] = SERIES_COLORS,
    empty_message: str = "no data",
) -> Markup:
    """Vertical (optionally stacked) bars with a y axis, gridlines, labels and a legend."""
    if not columns:
        return _empty_chart(chart_id, title, empty_message)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base_y = MARGIN_TOP + plot_h
    ticks = axis_ticks(max(sum(c.segments) for c in columns))
    scale = plot_h / ticks[-1]
    slot = plot_w / len(columns)
    bar_w = min(max(slot * 0.8, 0.5), MAX_BAR_WIDTH)
    label_every = math.ceil(len(columns) / MAX_X_LABELS)
    fit = int(slot * label_every / LABEL_CHAR_WIDTH)
    rotate = fit < MIN_FLAT_LABEL_CHARS and max(len(c.label) for c in columns) > fit
    labels = [short_label(c.label, MAX_LABEL_CHARS if rotate else fit) for c in columns]
    parts = _open_svg(chart_id, title)
    for tick in ticks:
        y = base_y - tick * scale
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{format_number(tick)}</text>"
        )
    for index, column in enumerate(columns):
        x = MARGIN_LEFT + index * slot + (slot - bar_w) / 2
        top = base_y
        parts.append(f'<g class="bar"><title>{escape(column.tooltip)}</title>')
        for series_index, value in enumerate(column.segments):
            height = value * scale
            top -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
                f'fill="{colors[series_index % len(colors)]}"/>'
            )
        parts.append("</g>")
        if index % label_every == 0:
            parts.append(_x_label(x + bar_w / 2, base_y + 14, labels[index], rotate))
    parts.extend(_axes(base_y, x_label, y_label))
    parts.extend(_legend(series, colors))
    parts.append("</svg>")
    return Markup("".join(parts))


def _x_label(x: float, y: float, text: str, rotate: bool) -> str:
    """A bar's label under the axis, slanted when the labels are wider than their bars."""
    if not rotate:
        return (
            f'<text class="xlabel" x="{x:.1f}" y="{y}" text-anchor="middle">{escape(text)}</text>'
        )
    return (
        f'<text class="xlabel" x="{x:.1f}" y="{y}" text-anchor="end" '
        f'transform="rotate(-35 {x:.1f} {y})">{escape(text)}</text>'
    )


def _axes(base_y: float, x_label: str, y_label: str) -> list[str]:
    mid_y = MARGIN_TOP + (base_y - MARGIN_TOP) / 2
    return [
        f'<line class="axis" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
        f'y1="{base_y:.1f}" y2="{base_y:.1f}"/>',
        f'<text class="axis-label" x="{MARGIN_LEFT + (WIDTH - MARGIN_LEFT) / 2:.1f}" '
        f'y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text class="axis-label" x="14" y="{mid_y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {mid_y:.1f})">{escape(y_label)}</text>',
    ]


def _legend(series: Sequence[str], colors: Sequence[str]) -> list[str]:
    parts = []
    x = WIDTH - MARGIN_RIGHT
    for index, name in reversed(list(enumerate(series))):
        x -= 12 + 7 * len(name) + 16
        parts.append(
            f'<rect x="{x}" y="8" width="10" height="10" '
            f'fill="{colors[index % len(colors)]}"/>'
            f'<text class="legend" x="{x + 14}" y="17">{escape(name)}</text>'
        )
    return parts


def histogram_chart(chart_id: str, title: str, bins: Sequence[Bin], unit: str) -> Markup:
    """A histogram of bins, each bar labelled with its range."""
    ranges = [f"{format_number(b.low)}{RANGE_DASH}{format_number(b.high)}" for b in bins]
    columns = [
        Column(label=text, segments=(float(b.count),), tooltip=f"{text} {unit}: {b.count}")
        for text, b in zip(ranges, bins, strict=True)
    ]
    return column_chart(chart_id, title, columns, x_label=unit, y_label="results")


def tokens_chart(chart_id: str, title: str, rows: Sequence[RowTokens]) -> Markup:
    """Prompt and completion tokens stacked per result."""
    columns = [
        Column(
            label=row.label,
            segments=(float(row.prompt), float(row.completion)),
            tooltip=f"{row.label}: {row.prompt} prompt + {row.completion} completion tokens",
        )
        for row in rows
    ]
    return column_chart(
        chart_id,
        title,
        columns,
        x_label="row",
        y_label="tokens",
        series=("prompt", "completion"),
    )


def error_chart(
    chart_id: str, title: str, counts: Sequence[tuple[str, int]], empty_message: str
) -> Markup:
    """Counts per category as red bars: errors by kind."""
    columns = [
        Column(label=name, segments=(float(count),), tooltip=f"{name}: {count}")
        for name, count in counts
    ]
    return column_chart(
        chart_id,
        title,
        columns,
        x_label="",
        y_label="results",
        colors=(ERROR_COLOR,),
        empty_message=empty_message,
    )

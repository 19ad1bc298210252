"""Render the replay report model as one self-contained HTML page (inline CSS and SVG, no links)."""

from __future__ import annotations

import jinja2

from load.replay_report_model import ReportModel
from load.replay_report_svg import error_chart, format_number, histogram_chart, tokens_chart

TEMPLATE_NAME = "replay_report.html.j2"
DASH = "—"


def format_ms(value: float | None) -> str:
    """Milliseconds for people: '850 ms', '12.5 ms', '2.31 s', or a dash when unknown."""
    if value is None:
        return DASH
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{format_number(round(value, 1))} ms"


def format_seconds(value: float) -> str:
    """A run duration: '42.0 s' or '3 min 5 s'."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s"


def format_count(value: int | None) -> str:
    """A count with thousands separators, or a dash when unknown."""
    return DASH if value is None else f"{value:,}"


def report_environment() -> jinja2.Environment:
    """The Jinja environment: autoescaping on (prompts are untrusted text), strict undefined."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("load", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters.update(ms=format_ms, seconds=format_seconds, count_or_dash=format_count)
    return environment


def render_report_html(model: ReportModel) -> str:
    """The whole report page for one run, every piece of data HTML-escaped."""
    charts = {
        "latency": histogram_chart(
            "latency", "Latency distribution", model.latency_bins, unit="ms"
        ),
        "ttft": histogram_chart("ttft", "Time to first token", model.ttft_bins, unit="ms"),
        "tokens": tokens_chart("tokens", "Tokens per row", model.tokens_per_row),
        "errors": error_chart(
            "errors", "Errors by kind", model.errors_by_kind, empty_message="no errors"
        ),
    }
    template = report_environment().get_template(TEMPLATE_NAME)
    return template.render(s=model.summary, m=model, charts=charts)

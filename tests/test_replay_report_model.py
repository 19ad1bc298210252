"""The replay report's pure parts: statistics, bins, error kinds, the model and the SVG charts."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from load.replay_report_model import (
    TOKEN_BARS_LIMIT,
    Bin,
    RowTokens,
    build_report_model,
    count_error_kinds,
    error_kind,
    histogram,
    nice_step,
)
from load.replay_report_svg import RANGE_DASH, error_chart, histogram_chart, tokens_chart

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def metric(row_id: str, status: str = "ok", **values: object) -> dict[str, object]:
    """A sql/replay/report_metrics.sql row with defaults for what a test does not care about."""
    row: dict[str, object] = {
        "row_id": row_id,
        "repeat_index": 0,
        "status": status,
        "error": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "ttft_ms": None,
        "latency_ms": None,
    }
    row.update(values)
    return row


def totals(ok: int = 0, errors: int = 0) -> dict[str, object]:
    """A load.replay_merge.run_summary row: what the replay computed over the run's results."""
    return {
        "ok": ok,
        "errors": errors,
        "recovered": 1 if ok else 0,
        "prompt_tokens": 20 if ok else 0,
        "completion_tokens": 45 if ok else 0,
        "total_tokens": 65 if ok else 0,
        "latency_p50_ms": 250.0 if ok else None,
        "latency_p95_ms": 295.0 if ok else None,
        "ttft_p50_ms": 60.0 if ok else None,
        "ttft_p95_ms": 69.0 if ok else None,
    }


def test_nice_step_rounds_to_readable_widths() -> None:
    assert nice_step(390, 12) == 50
    assert nice_step(12, 12) == 1
    assert nice_step(0.9, 12) == pytest.approx(0.1)
    assert nice_step(0, 12) == 1


def test_histogram_bins_cover_every_value_with_round_edges() -> None:
    assert histogram([60, 80, 120, 200, 300, 450]) == (
        Bin(50, 100, 2),
        Bin(100, 150, 1),
        Bin(150, 200, 0),
        Bin(200, 250, 1),
        Bin(250, 300, 0),
        Bin(300, 350, 1),
        Bin(350, 400, 0),
        Bin(400, 450, 0),
        Bin(450, 500, 1),
    )
    assert histogram([5.0, 5.0]) == (Bin(5, 6, 2),)
    assert histogram([]) == ()


def test_error_kind_names_the_class_or_the_status() -> None:
    assert error_kind("StreamCut: start_stream: HTTP 200: stream ended early") == "StreamCut"
    assert error_kind("RetriesExhausted(503, 'busy', 'start')") == "RetriesExhausted"
    assert error_kind("start_stream: HTTP 500: internal error") == "HTTP 500"
    assert error_kind("append: transport error: connection reset") == "transport error"
    assert (
        error_kind("conversation.response.error 3000: model overloaded")
        == "conversation.response.error 3000"
    )
    assert error_kind(None) == "unknown"
    assert (
        error_kind("stream cut before conversation.response.done (3 attempts)")
        == "stream cut before conversation.response.done"
    )
    assert error_kind("previous turn failed") == "previous turn failed"
    assert error_kind("x" * 60) == "x" * 47 + "…"
    assert count_error_kinds(["HTTP 500: a", "b: HTTP 503: c", "HTTP 500: d", None]) == (
        ("HTTP 500", 2),
        ("HTTP 503", 1),
        ("unknown", 1),
    )


def test_build_report_model_summarizes_every_result() -> None:
    run = {
        "run_id": "run-a",
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=90),
        "source_file": "prompts.csv",
        "rows": 3,
        "repeat": 2,
        "stream": True,
        "base_url": "http://127.0.0.1:9",
        "options": '{"concurrency":4}',
    }
    metrics = [
        metric(
            "a",
            prompt_tokens=10,
            completion_tokens=20,
            ttft_ms=50.0,
            latency_ms=200.0,
        ),
        metric(
            "a",
            repeat_index=1,
            prompt_tokens=10,
            completion_tokens=25,
            ttft_ms=70.0,
            latency_ms=300.0,
        ),
        metric("b", "error", error="StreamCut: cut", ttft_ms=40.0, latency_ms=100.0),
        metric("c", "error", error="start: HTTP 500: boom", latency_ms=60.0),
    ]
    event_counts = [{"event_type": "message.output.delta", "events": 12}]
    model = build_report_model(run, totals(ok=2, errors=2), metrics, metrics[:2], event_counts)

    s = model.summary
    assert (s.run_id, s.source_file, s.rows, s.repeat, s.stream) == (
        "run-a",
        "prompts.csv",
        3,
        2,
        True,
    )
    assert (s.started_at, s.finished_at, s.duration_s) == (
        "2026-11-26 12:00:00 UTC",
        "2026-11-26 12:01:30 UTC",
        90.0,
    )
    assert (s.results, s.ok, s.errors, s.recovered) == (4, 2, 2, 1)
    assert (s.prompt_tokens, s.completion_tokens, s.total_tokens) == (20, 45, 65)
    assert (s.latency_p50_ms, s.latency_p95_ms, s.ttft_p50_ms, s.ttft_p95_ms) == (
        250.0,
        295.0,
        60.0,
        69.0,
    )
    # Only ok results are binned: the errors' 100 ms and 60 ms are not in the charts.
    assert model.latency_bins == histogram([200.0, 300.0])
    assert sum(b.count for b in model.latency_bins) == 2
    assert model.ttft_bins == histogram([50.0, 70.0])
    assert model.tokens_per_row == (
        RowTokens("a#0", 10, 20),
        RowTokens("a#1", 10, 25),
        RowTokens("b#0", 0, 0),
        RowTokens("c#0", 0, 0),
    )
    assert model.errors_by_kind == (("HTTP 500", 1), ("StreamCut", 1))
    assert model.events_by_type == (("message.output.delta", 12),)
    assert [r.row_id for r in model.table_rows] == ["a", "a"]
    assert model.table_truncated
    assert not model.tokens_truncated


def test_unfinished_run_and_many_rows() -> None:
    run = {"run_id": "r", "started_at": T0, "finished_at": None, "repeat": 1}
    metrics = [metric(str(i), prompt_tokens=i) for i in range(TOKEN_BARS_LIMIT + 5)]
    model = build_report_model(run, totals(), metrics, metrics, [])
    assert model.summary.finished_at == ""
    assert model.summary.duration_s is None
    assert model.summary.latency_p50_ms is None
    assert model.latency_bins == ()
    assert len(model.tokens_per_row) == TOKEN_BARS_LIMIT
    assert model.tokens_per_row[3] == RowTokens("3", 3, 0)
    assert model.tokens_truncated
    assert not model.table_truncated


def test_histogram_chart_draws_one_bar_per_bin_with_tooltips() -> None:
    svg = str(histogram_chart("latency", "Latency", histogram([60, 80, 120, 450]), unit="ms"))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="chart"')
    assert 'data-chart="latency"' in svg
    assert svg.count('<g class="bar">') == 9
    assert f"<title>50{RANGE_DASH}100 ms: 2</title>" in svg
    assert svg.endswith("</svg>")


def test_tokens_chart_stacks_prompt_and_completion() -> None:
    svg = str(tokens_chart("tokens", "Tokens", [RowTokens("r1", 10, 30), RowTokens("r2", 5, 5)]))
    assert svg.count('<g class="bar">') == 2
    assert svg.count("<rect ") == 4 + 2  # two segments per bar, plus two legend swatches
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)" fill="#', svg)][:4]
    assert heights[1] == pytest.approx(3 * heights[0], rel=0.01)
    assert "r1: 10 prompt + 30 completion tokens" in svg


def test_error_chart_escapes_labels_and_says_when_there_are_none() -> None:
    svg = str(error_chart("errors", "Errors", [("<b>Bad</b> & worse", 2)], "no errors"))
    assert "<b>" not in svg
    assert "&lt;b&gt;Bad&lt;/b&gt; &amp; worse: 2" in svg
    empty = str(error_chart("errors", "Errors", [], "no errors"))
    assert "<rect" not in empty
    assert ">no errors</text>" in empty

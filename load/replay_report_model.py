"""The replay report's content, built by pure functions from query rows so it can be tested exactly.

Input rows are plain dicts as the ``sql/replay_report_*.sql`` queries return them; the output is a
tree of frozen dataclasses that the SVG and HTML renderers turn into markup.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from transform.replay import RunTotals, run_totals

_CLASS_PREFIX = re.compile(r"^([A-Z][A-Za-z0-9_]*)(?::|\(|$)")
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_PARENTHESIS = re.compile(r"\s*\([^)]*\)$")
_KIND_LIMIT = 48
HISTOGRAM_BINS = 12
TOKEN_BARS_LIMIT = 200


@dataclass(frozen=True)
class Bin:
    """One histogram bar: values in [low, high) (the last bin also holds its high edge)."""

    low: float
    high: float
    count: int


@dataclass(frozen=True)
class RowTokens:
    """Token usage of one result (a row's repeat), for the tokens-per-row chart."""

    label: str
    prompt: int
    completion: int


@dataclass(frozen=True)
class ResultRow:
    """One line of the results table: a prompt and what came back, side by side."""

    row_id: str
    repeat_index: int
    status: str
    mode: str
    prompt: str
    output: str
    error: str
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    latency_ms: float | None
    recovered: bool
    attempts: int
    target: str
    conversation_id: str
    variant: str = ""
    verdict: str = ""  # pass, fail, pending, or "" when the row has no checks
    checks: str = ""  # "passed/checks"
    flaky: bool = False


@dataclass(frozen=True)
class VariantColumn:
    """One variant of a matrix run, a column of the side-by-side table."""

    variant: str
    results: int
    ok: int
    pass_rate: float | None
    prompt_tokens: int
    completion_tokens: int
    latency_p50_ms: float | None
    ttft_p50_ms: float | None


@dataclass(frozen=True)
class RunSummary(RunTotals):
    """The header numbers of one replay run: its stored facts plus its results' totals."""

    run_id: str
    source_file: str
    started_at: str
    finished_at: str
    duration_s: float | None
    rows: int | None
    repeat: int | None
    stream: bool | None
    base_url: str
    options: str
    status: str


@dataclass(frozen=True)
class ReportModel:
    """Everything the report shows: header, chart series, event counts and the table rows."""

    summary: RunSummary
    latency_bins: tuple[Bin, ...]
    ttft_bins: tuple[Bin, ...]
    tokens_per_row: tuple[RowTokens, ...]
    tokens_truncated: bool
    errors_by_kind: tuple[tuple[str, int], ...]
    events_by_type: tuple[tuple[str, int], ...]
    table_rows: tuple[ResultRow, ...]
    table_truncated: bool
    variants: tuple[VariantColumn, ...] = ()
    graded: bool = False


def nice_step(span: float, target_bins: int) -> float:
    """A round bin width (1, 2, 2.5 or 5 times a power of ten) giving about target_bins bins."""
    raw = span / target_bins if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10.0 * magnitude


def histogram(values: Sequence[float], target_bins: int = HISTOGRAM_BINS) -> tuple[Bin, ...]:
    """Count values into equal, round-edged bins covering min..max; no values gives no bins."""
    if not values:
        return ()
    low, high = min(values), max(values)
    step = nice_step(high - low, target_bins)
    start = math.floor(low / step) * step
    count = max(1, math.floor((high - start) / step) + 1)
    counts = [0] * count
    for value in values:
        counts[min(int((value - start) // step), count - 1)] += 1
    return tuple(
        Bin(low=start + i * step, high=start + (i + 1) * step, count=n)
        for i, n in enumerate(counts)
    )


def error_kind(error: str | None) -> str:
    """Group an error message: its exception class, else its HTTP status, else its first clause."""
    text = (error or "").strip()
    if not text:
        return "unknown"
    named = _CLASS_PREFIX.match(text)
    if named:
        return named.group(1)
    status = _HTTP_STATUS.search(text)
    if status:
        return f"HTTP {status.group(1)}"
    if "transport error" in text:
        return "transport error"
    first = _PARENTHESIS.sub("", text.split(":", 1)[0].strip())
    return first if len(first) <= _KIND_LIMIT else first[: _KIND_LIMIT - 1] + "…"


def count_error_kinds(errors: Iterable[str | None]) -> tuple[tuple[str, int], ...]:
    """Errors per kind, most frequent first (ties by name, so the order is stable)."""
    counts = Counter(error_kind(error) for error in errors)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def format_timestamp(value: datetime | None) -> str:
    """A timestamp in UTC to the second, or an empty string when absent."""
    return "" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def result_label(row_id: Any, repeat_index: Any, repeat: int | None) -> str:
    """A result's short name: the row id, with the repeat index when the run repeated rows."""
    return f"{row_id}" if not repeat or repeat <= 1 else f"{row_id}#{repeat_index}"


def _numbers(rows: Iterable[dict[str, Any]], column: str) -> list[float]:
    return [float(row[column]) for row in rows if row.get(column) is not None]


def summarize_run(run: dict[str, Any], totals: dict[str, Any]) -> RunSummary:
    """The header: the run's stored facts plus the counts and percentiles of its results.

    ``totals`` is ``load.replay_merge.run_summary``: the same numbers the replay prints.
    """
    started, finished = run.get("started_at"), run.get("finished_at")
    duration = (
        (finished - started).total_seconds()
        if isinstance(started, datetime) and isinstance(finished, datetime)
        else None
    )
    return RunSummary(
        **asdict(run_totals(totals)),
        run_id=str(run["run_id"]),
        source_file=str(run.get("source_file") or ""),
        started_at=format_timestamp(started),
        finished_at=format_timestamp(finished),
        duration_s=duration,
        rows=run.get("rows"),
        repeat=run.get("repeat"),
        stream=run.get("stream"),
        base_url=str(run.get("base_url") or ""),
        options=str(run.get("options") or ""),
        status=str(run.get("status") or ""),
    )


def table_row(row: dict[str, Any]) -> ResultRow:
    """One results-table line from a ``sql/replay/report_rows.sql`` row."""
    return ResultRow(
        row_id=str(row["row_id"]),
        repeat_index=int(row["repeat_index"] or 0),
        status=str(row["status"]),
        mode=str(row.get("mode") or ""),
        prompt=str(row.get("prompt") or ""),
        output=str(row.get("output_text") or ""),
        error=str(row.get("error") or ""),
        prompt_tokens=row.get("prompt_tokens"),
        completion_tokens=row.get("completion_tokens"),
        ttft_ms=row.get("ttft_ms"),
        latency_ms=row.get("latency_ms"),
        recovered=bool(row.get("recovered")),
        attempts=int(row.get("attempts") or 1),
        target=str(row.get("agent_id") or row.get("model") or ""),
        conversation_id=str(row.get("conversation_id") or ""),
        variant=str(row.get("variant") or ""),
        verdict=_verdict(row),
        checks=f"{row['passed']}/{row['checks']}" if row.get("checks") else "",
        flaky=bool(row.get("flaky")),
    )


def _verdict(row: dict[str, Any]) -> str:
    if not row.get("checks"):
        return ""
    return {True: "pass", False: "fail", None: "pending"}[row.get("pass")]


def variant_column(line: dict[str, Any]) -> VariantColumn:
    """One side-by-side column from a ``sql/replay/report_variants.sql`` row."""
    decided = int(line["passed"] or 0) + int(line["failed"] or 0)
    return VariantColumn(
        variant=str(line["variant"]),
        results=int(line["results"]),
        ok=int(line["ok"]),
        pass_rate=int(line["passed"]) / decided if decided else None,
        prompt_tokens=int(line["prompt_tokens"] or 0),
        completion_tokens=int(line["completion_tokens"] or 0),
        latency_p50_ms=line["latency_p50_ms"],
        ttft_p50_ms=line["ttft_p50_ms"],
    )


def build_report_model(
    run: dict[str, Any],
    totals: dict[str, Any],
    metrics: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    event_counts: Sequence[dict[str, Any]],
    variants: Sequence[dict[str, Any]] = (),
) -> ReportModel:
    """Assemble the report from the run row, its totals, every result's metrics, rows and events.

    The latency and TTFT charts count ok results only, like the percentiles in the header.
    """
    summary = summarize_run(run, totals)
    succeeded = [row for row in metrics if row["status"] == "ok"]
    return ReportModel(
        summary=summary,
        latency_bins=histogram(_numbers(succeeded, "latency_ms")),
        ttft_bins=histogram(_numbers(succeeded, "ttft_ms")),
        tokens_per_row=tuple(
            RowTokens(
                label=result_label(row["row_id"], row["repeat_index"], summary.repeat),
                prompt=int(row.get("prompt_tokens") or 0),
                completion=int(row.get("completion_tokens") or 0),
            )
            for row in metrics[:TOKEN_BARS_LIMIT]
        ),
        tokens_truncated=len(metrics) > TOKEN_BARS_LIMIT,
        errors_by_kind=count_error_kinds(row["error"] for row in metrics if row["status"] != "ok"),
        events_by_type=tuple((str(row["event_type"]), int(row["events"])) for row in event_counts),
        table_rows=tuple(table_row(row) for row in rows),
        table_truncated=len(rows) < len(metrics),
        variants=tuple(variant_column(line) for line in variants),
        graded=any(row.get("checks") for row in rows),
    )

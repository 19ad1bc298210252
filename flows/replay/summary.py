"""A replay run's closing summary, rendered as a terminal table and as the Prefect artifact."""

from dataclasses import dataclass

from rich.console import Console

from flows.evals.grade import GradeReport
from flows.evals.summary import grading_lines
from flows.progress import numbers_table
from transform.replay import RunTotals
from transform.wording import counted


@dataclass(frozen=True)
class ReplaySummary(RunTotals):
    """The closing numbers of a run, printed by the CLI and put in the Prefect artifact."""

    run_id: str
    rows: int
    sent: int
    skipped: int
    seconds: float
    grading: GradeReport | None = None
    rate_limited: int = 0
    pace_rps: float | None = None


def _ms(value: float | None, template: str) -> str:
    return "-" if value is None else template.format(value)


def pace(summary: ReplaySummary) -> str:
    """The pace learned from 429s, or "-" when the API never limited the run."""
    return "-" if summary.pace_rps is None else f"{summary.pace_rps:.2f} req/s"


def summary_markdown(summary: ReplaySummary, source_file: str) -> str:
    """The run's summary as the markdown of its Prefect artifact."""

    def ms(value: float | None) -> str:
        return _ms(value, "{:.0f}")

    return "\n".join(
        [
            f"# Replay `{summary.run_id}`",
            "",
            f"Prompt set `{source_file}`: {counted(summary.rows, 'row')}, "
            f"{counted(summary.results, 'result')} "
            f"({summary.sent} sent, {summary.skipped} already ok) in {summary.seconds:.1f} s; "
            f"{summary.rate_limited} rate limited, learned pace {pace(summary)}.",
            "",
            "| ok | errors | recovered | prompt tokens | completion tokens | total tokens |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {summary.ok} | {summary.errors} | {summary.recovered} | {summary.prompt_tokens} "
            f"| {summary.completion_tokens} | {summary.total_tokens} |",
            "",
            "| | p50 ms | p95 ms |",
            "|---|---:|---:|",
            f"| latency | {ms(summary.latency_p50_ms)} | {ms(summary.latency_p95_ms)} |",
            f"| time to first token | {ms(summary.ttft_p50_ms)} | {ms(summary.ttft_p95_ms)} |",
            *(
                ["", *(f"- {label}: {value}" for label, value in grading_lines(summary.grading))]
                if summary.grading
                else []
            ),
        ]
    )


def print_summary(summary: ReplaySummary) -> None:
    """Print the run's summary as a table on stdout."""

    def ms(value: float | None) -> str:
        return _ms(value, "{:,.0f} ms")

    rows = [
        ("results", f"{summary.results} ({counted(summary.rows, 'row')})"),
        ("sent / already ok", f"{summary.sent} / {summary.skipped}"),
        ("ok / errors", f"{summary.ok} / {summary.errors}"),
        ("recovered from history", str(summary.recovered)),
        (
            "tokens (prompt + completion = total)",
            f"{summary.prompt_tokens} + {summary.completion_tokens} = {summary.total_tokens}",
        ),
        ("latency p50 / p95", f"{ms(summary.latency_p50_ms)} / {ms(summary.latency_p95_ms)}"),
        (
            "time to first token p50 / p95",
            f"{ms(summary.ttft_p50_ms)} / {ms(summary.ttft_p95_ms)}",
        ),
        ("rate limited (429) / learned pace", f"{summary.rate_limited} / {pace(summary)}"),
        ("wall time", f"{summary.seconds:.1f} s"),
        *(grading_lines(summary.grading) if summary.grading else []),
    ]
    Console(highlight=False).print(numbers_table(f"replay {summary.run_id}", rows))

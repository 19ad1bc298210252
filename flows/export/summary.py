"""What one export run did, in numbers, rendered for the terminal and for a Prefect artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich.table import Table

from flows.progress import numbers_table


@dataclass
class ExportSummary:
    """Counts and timings of one export run; fetch_started/finished exclude Prefect's start-up.

    ``fetched_ahead``: conversations the command's head start asked for before the flow run's
    fetch reached them (flows.export.head_start); ``deleted``: listed conversations that
    answered 404 when fetched (deleted while the run ran); ``marked_deleted``: stored
    conversations this run found gone from the API (marked in conversations.deleted_at);
    ``purged``: deleted conversations removed by --purge-deleted.
    """

    run_id: str
    started_at: datetime
    listed: int = 0
    selected: int = 0
    unchanged: int = 0
    fetched: int = 0
    fetched_ahead: int = 0
    failed: int = 0
    deleted: int = 0
    marked_deleted: int = 0
    purged: int = 0
    entries_written: int = 0
    messages_written: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    pace_rps: float | None = None
    batches: int = 0
    fetch_started: datetime | None = None
    fetch_finished: datetime | None = None
    finished_at: datetime | None = None
    failure_samples: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Wall time of the whole run, its head start and Prefect's own work included."""
        if self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def fetch_duration_s(self) -> float:
        """Wall time from the first API request to the last response (storing the last batch
        comes after it; ``duration_s`` covers everything)."""
        if self.fetch_started is None or self.fetch_finished is None:
            return 0.0
        return (self.fetch_finished - self.fetch_started).total_seconds()

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order both renderings show them."""
        return [
            ("listed", f"{self.listed:,}"),
            ("fetched", f"{self.fetched:,}"),
            ("fetched ahead of the flow run", f"{self.fetched_ahead:,}"),
            ("unchanged", f"{self.unchanged:,}"),
            ("failed", f"{self.failed:,}"),
            ("deleted while running", f"{self.deleted:,}"),
            ("marked deleted", f"{self.marked_deleted:,}"),
            ("purged", f"{self.purged:,}"),
            ("entries written", f"{self.entries_written:,}"),
            ("messages written", f"{self.messages_written:,}"),
            ("requests", f"{self.requests:,}"),
            ("retries", f"{self.retries:,}"),
            ("rate limited (429)", f"{self.rate_limited:,}"),
            ("learned pace", "-" if self.pace_rps is None else f"{self.pace_rps:.2f} req/s"),
            ("batches", f"{self.batches:,}"),
            ("duration", f"{self.duration_s:.2f} s"),
            ("fetch phase", f"{self.fetch_duration_s:.2f} s"),
        ]


def summary_markdown(summary: ExportSummary) -> str:
    """The run's numbers as a markdown table, for the Prefect artifact."""
    lines = [
        f"# Export run `{summary.run_id}`",
        "",
        "| | |",
        "|---|---:|",
        *(f"| {label} | {value} |" for label, value in summary.rows()),
    ]
    if summary.failure_samples:
        lines += ["", "## Failures (first few)", ""]
        lines += [f"- {sample}" for sample in summary.failure_samples]
    return "\n".join(lines) + "\n"


def summary_table(summary: ExportSummary, title: str = "Export") -> Table:
    """The run's numbers as a rich table, for the terminal."""
    return numbers_table(title, summary.rows())

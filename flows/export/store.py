"""Store a fetched batch: flatten it, write its Parquet parts, merge it into DuckDB atomically.

A conversation's stored updated_at moves only in the transaction that replaces its entries, so
a run killed at any point leaves every conversation either current or due for re-fetching.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from flows.export.fetch import FetchedBatch, FetchFailure
from flows.export.summary import ExportSummary
from load.parquet import part_name, write_part
from load.warehouse import merge_export_batch, record_export_failures, record_export_run
from transform.bodies import failure_row, flatten_bodies
from transform.export_runs import export_failures_table, export_run_table
from transform.workspaces import with_workspace


@dataclass(frozen=True)
class StoredCounts:
    """Rows one batch put into the warehouse, and every conversation of it that failed (in
    fetching, or with a body that is not the JSON the spec says)."""

    conversations: int
    entries: int
    messages: int
    failures: tuple[FetchFailure, ...]

    @classmethod
    def of(cls, tables: dict[str, pa.Table], failures: list[FetchFailure]) -> StoredCounts:
        """The counts of a flattened batch (flatten_batch's tables and failures)."""
        return cls(
            conversations=tables["conversations"].num_rows,
            entries=tables["entries"].num_rows,
            messages=tables["messages"].num_rows,
            failures=tuple(failures),
        )


class StoreFailed(Exception):
    """A batch could not be written or merged (disk, permissions, DuckDB); one line for the user.

    Its transaction rolled back, so none of it is in the warehouse and the next run fetches it
    again.
    """


def store_fetched_batch(
    warehouse: duckdb.DuckDBPyConnection,
    batch: FetchedBatch,
    run_id: str,
    data_dir: Path,
    workspace: str,
) -> StoredCounts:
    """Flatten a fetched batch, write its Parquet parts, merge it and record its failures, all
    in ``workspace``."""
    try:
        return _store(warehouse, batch, run_id, data_dir, workspace)
    except (OSError, duckdb.Error) as error:
        raise StoreFailed(
            f"batch {batch.number} could not be stored in {data_dir}: {error} "
            "(it was not merged into the warehouse; the next run fetches it again)"
        ) from error


def _store(
    warehouse: duckdb.DuckDBPyConnection,
    batch: FetchedBatch,
    run_id: str,
    data_dir: Path,
    workspace: str,
) -> StoredCounts:
    tables, failures = flatten_batch(batch, run_id)
    if tables["conversations"].num_rows:
        part = part_name(run_id, batch.number)
        for table_name, table in tables.items():
            write_part(with_workspace(table, workspace), data_dir, table_name, part)
        merge_export_batch(
            warehouse,
            tables["conversations"],
            tables["entries"],
            tables["messages"],
            tables["content_chunks"],
            workspace,
        )
    record_export_failures(warehouse, failures_table(run_id, failures), workspace)
    return StoredCounts.of(tables, failures)


def flatten_batch(
    batch: FetchedBatch, run_id: str
) -> tuple[dict[str, pa.Table], list[FetchFailure]]:
    """A batch's four tables, plus every failure: its fetch failures and its rejected bodies."""
    tables, rejected = flatten_bodies(
        ((c.conversation, c.history, c.messages) for c in batch.conversations), run_id
    )
    failures = list(batch.failures)
    failures += [
        FetchFailure(r.conversation_id, r.operation, 200, r.message, False) for r in rejected
    ]
    return tables, failures


def failures_table(run_id: str, failures: list[FetchFailure]) -> pa.Table:
    """The export_failures rows of a batch's failures, stamped now."""
    return export_failures_table([_failure_row(run_id, f) for f in failures])


def _failure_row(run_id: str, failure: FetchFailure) -> dict[str, Any]:
    """An export_failures row for a conversation that could not be fetched, stamped now."""
    return failure_row(
        run_id,
        failure.conversation_id,
        failure.operation,
        failure.status,
        failure.message,
        failure.deleted,
        datetime.now(UTC),
    )


def record_run(
    warehouse: duckdb.DuckDBPyConnection,
    summary: ExportSummary,
    mode: str,
    status: str,
    base_url: str,
    workspace: str,
) -> None:
    """Insert or replace the run's export_runs row (in ``workspace``) with its counters so far."""
    record_export_run(warehouse, run_row(summary, mode, status, base_url), workspace)


def run_row(summary: ExportSummary, mode: str, status: str, base_url: str) -> pa.Table:
    """The run's export_runs row with its counters so far (base_url already redacted)."""
    return export_run_table(
        {
            "run_id": summary.run_id,
            "started_at": summary.started_at,
            "finished_at": summary.finished_at,
            "fetch_started": summary.fetch_started,
            "fetch_finished": summary.fetch_finished,
            "status": status,
            "mode": mode,
            "listed": summary.listed,
            "fetched": summary.fetched,
            "unchanged": summary.unchanged,
            "failed": summary.failed,
            "deleted": summary.deleted,
            "entries_written": summary.entries_written,
            "messages_written": summary.messages_written,
            "requests": summary.requests,
            "retries": summary.retries,
            "duration_s": summary.duration_s,
            "base_url": base_url,
            "marked_deleted": summary.marked_deleted,
            "purged": summary.purged,
            "rate_limited": summary.rate_limited,
            "pace_rps": summary.pace_rps,
        }
    )

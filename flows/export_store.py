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

from flows.export_fetch import FetchedBatch, FetchFailure
from flows.export_summary import ExportSummary
from load.parquet import part_name, write_part
from load.warehouse import merge_export_batch, record_export_failures, record_export_run
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks


@dataclass(frozen=True)
class StoredCounts:
    """Rows one batch put into the warehouse."""

    conversations: int
    entries: int
    messages: int
    chunks: int


def store_fetched_batch(
    warehouse: duckdb.DuckDBPyConnection, batch: FetchedBatch, run_id: str, data_dir: Path
) -> StoredCounts:
    """Flatten a fetched batch, write its Parquet parts, merge it and record its failures."""
    fetched = batch.conversations
    histories = [(f.conversation["id"], f.history.get("entries") or []) for f in fetched]
    message_lists = [(f.conversation["id"], f.messages.get("messages") or []) for f in fetched]
    tables = {
        "conversations": flatten_conversations([f.conversation for f in fetched], run_id),
        "entries": flatten_histories(histories, run_id),
        "messages": flatten_histories(message_lists, run_id),
        "content_chunks": flatten_histories_chunks(histories, run_id),
    }
    if fetched:
        part = part_name(run_id, batch.number)
        for table_name, table in tables.items():
            write_part(table, data_dir, table_name, part)
        merge_export_batch(
            warehouse,
            tables["conversations"],
            tables["entries"],
            tables["messages"],
            tables["content_chunks"],
        )
    record_export_failures(warehouse, [failure_row(run_id, f) for f in batch.failures])
    return StoredCounts(
        conversations=tables["conversations"].num_rows,
        entries=tables["entries"].num_rows,
        messages=tables["messages"].num_rows,
        chunks=tables["content_chunks"].num_rows,
    )


def failure_row(run_id: str, failure: FetchFailure) -> dict[str, Any]:
    """An export_failures row for a conversation that could not be fetched."""
    kind = "deleted after listing" if failure.deleted else "failed"
    return {
        "run_id": run_id,
        "conversation_id": failure.conversation_id,
        "endpoint": failure.operation,
        "status": failure.status,
        "reason": f"{kind}: {failure.message}",
        "failed_at": datetime.now(UTC),
    }


def record_run(
    warehouse: duckdb.DuckDBPyConnection,
    summary: ExportSummary,
    mode: str,
    status: str,
    base_url: str,
) -> None:
    """Insert or replace the run's export_runs row with its counters so far."""
    record_export_run(
        warehouse,
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
        },
    )

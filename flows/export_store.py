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

from flows.export_fetch import FetchedBatch, FetchFailure
from flows.export_summary import ExportSummary
from load.parquet import part_name, write_part
from load.warehouse import merge_export_batch, record_export_failures, record_export_run
from transform import lossless_json
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks


@dataclass(frozen=True)
class StoredCounts:
    """Rows one batch put into the warehouse, and every conversation of it that failed (in
    fetching, or with a body that is not the JSON the spec says)."""

    conversations: int
    entries: int
    messages: int
    chunks: int
    failures: tuple[FetchFailure, ...]


class StoreFailed(Exception):
    """A batch could not be written or merged (disk, permissions, DuckDB); one line for the user.

    Its transaction rolled back, so none of it is in the warehouse and the next run fetches it
    again.
    """


class _UnexpectedBody(ValueError):
    """A 2xx body that is not the JSON object, with a list under its key, that the spec says."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.message = message


def store_fetched_batch(
    warehouse: duckdb.DuckDBPyConnection, batch: FetchedBatch, run_id: str, data_dir: Path
) -> StoredCounts:
    """Flatten a fetched batch, write its Parquet parts, merge it and record its failures."""
    try:
        return _store(warehouse, batch, run_id, data_dir)
    except (OSError, duckdb.Error) as error:
        raise StoreFailed(
            f"batch {batch.number} could not be stored in {data_dir}: {error} "
            "(it was not merged into the warehouse; the next run fetches it again)"
        ) from error


def _store(
    warehouse: duckdb.DuckDBPyConnection, batch: FetchedBatch, run_id: str, data_dir: Path
) -> StoredCounts:
    tables, failures = flatten_batch(batch, run_id)
    if tables["conversations"].num_rows:
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
    record_export_failures(warehouse, [failure_row(run_id, f) for f in failures])
    return StoredCounts(
        conversations=tables["conversations"].num_rows,
        entries=tables["entries"].num_rows,
        messages=tables["messages"].num_rows,
        chunks=tables["content_chunks"].num_rows,
        failures=tuple(failures),
    )


def flatten_batch(
    batch: FetchedBatch, run_id: str
) -> tuple[dict[str, pa.Table], list[FetchFailure]]:
    """Decode a batch's bodies and flatten them into its four tables, plus every failure.

    The decoded JSON (several times the size of its bytes) is freed when this returns, before
    the batch is written and merged: it never shares the peak with DuckDB's memory.
    """
    failures = list(batch.failures)
    fetched: list[dict] = []
    histories: list[tuple[str, list]] = []
    message_lists: list[tuple[str, list]] = []
    for conversation in batch.conversations:
        cid = conversation.conversation["id"]
        try:
            history = _listed(conversation.history, "history", "entries")
            messages = _listed(conversation.messages, "messages", "messages")
        except _UnexpectedBody as error:
            failures.append(FetchFailure(cid, error.operation, 200, error.message, False))
            continue
        fetched.append(conversation.conversation)
        histories.append((cid, history))
        message_lists.append((cid, messages))
    tables = {
        "conversations": flatten_conversations(fetched, run_id),
        "entries": flatten_histories(histories, run_id),
        "messages": flatten_histories(message_lists, run_id),
        "content_chunks": flatten_histories_chunks(histories, run_id),
    }
    return tables, failures


def _listed(body: bytes, operation: str, key: str) -> list:
    """The list under ``key`` of a history or messages body (absent or null: no entries)."""
    try:
        parsed = lossless_json.loads(body)
    except lossless_json.NotJson as error:
        raise _UnexpectedBody(operation, f"response is {error}") from None
    if parsed.__class__ is not dict:
        raise _UnexpectedBody(
            operation, f"response is a JSON {type(parsed).__name__}, not an object"
        )
    listed = parsed.get(key) or []
    if listed.__class__ is not list:
        raise _UnexpectedBody(operation, f"response's {key!r} is not a list")
    return listed


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

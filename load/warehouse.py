"""Open the DuckDB warehouse with its tables and views, and merge export batches into it.

Every merge runs in one transaction, so a run killed at any point leaves each batch either
fully in or fully out; re-merging the same batch leaves the same rows. A merge reads the batch's
Arrow tables in place (``con.register``) rather than its Parquet parts: the flow already holds
them in memory, and reading the parts back would only add decoding; both hold the same rows.
A connection is for one thread at a time (use ``con.cursor()`` per thread).
"""

import contextlib
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from load.storage_errors import storage_error
from transform.export_runs import export_failures_table, export_run_table
from transform.schemas import CONTENT_CHUNKS, CONVERSATIONS, ENTRIES

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
WAREHOUSE_FILE = "warehouse.duckdb"
# DuckDB's buffer pool defaults to 80% of RAM and grows with the warehouse; a cap keeps a run's
# memory bounded by its batch size (cold blocks are evicted: they live on disk). One thread: a
# merge runs beside the export's event loop on 2 cores, and a batch is too small to gain more.
BASE_MEMORY_LIMIT = 64 * 2**20
DUCKDB_CONFIG = {"memory_limit": f"{BASE_MEMORY_LIMIT}B", "threads": 1}
# DuckDB works on vectors of 2,048 rows and keeps a transaction's inserted rows in memory until
# its commit, so a batch of a few huge entries (a 100 MB history) needs memory in proportion to
# the batch, not to a vector: a merge raises the cap to this many times the batch's Arrow bytes
# (measured: 1.4x refuses, 1.7x suffices) and lowers it back after.
MERGE_MEMORY_FACTOR = 2


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file open for writing."""


def sql_text(name: str) -> str:
    """The text of ``sql/<name>``."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def warehouse_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the warehouse of a data directory lives."""
    return Path(data_dir) / WAREHOUSE_FILE


def open_warehouse(
    data_dir: str | os.PathLike[str], read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Connect to ``<data_dir>/warehouse.duckdb`` with every table and view in place (UTC)."""
    path = warehouse_path(data_dir)
    if read_only and not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run an export first")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path), read_only=read_only, config=DUCKDB_CONFIG)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseLocked(
                f"warehouse {path} is locked by another process; wait for it to finish"
            ) from None
        raise storage_error(path, error) from error
    except OSError as error:
        raise storage_error(path.parent, error) from error
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            for name in ("schema.sql", "replay_schema.sql", "views.sql"):
                if (SQL_DIR / name).exists():
                    con.execute(sql_text(name))
    except duckdb.Error as error:
        con.close()
        raise storage_error(path, error) from error
    return con


def remove_warehouse(data_dir: str | os.PathLike[str]) -> None:
    """Delete a closed warehouse's files (the database and its write-ahead log)."""
    path = warehouse_path(data_dir)
    for file in (path, path.with_name(path.name + ".wal")):
        file.unlink(missing_ok=True)


def merge_export_batch(
    con: duckdb.DuckDBPyConnection,
    conversations: pa.Table,
    entries: pa.Table,
    messages: pa.Table,
    chunks: pa.Table,
) -> None:
    """Upsert a batch's conversations and replace their entries, messages and chunks, atomically.

    Every conversation in ``conversations`` counts as fully re-fetched: its stored entries,
    messages and chunks are replaced by the batch's (possibly none).
    """
    batch = {
        "batch_conversations": _checked(conversations, CONVERSATIONS, "conversations"),
        "batch_entries": _checked(entries, ENTRIES, "entries"),
        "batch_messages": _checked(messages, ENTRIES, "messages"),
        "batch_chunks": _checked(chunks, CONTENT_CHUNKS, "chunks"),
    }
    ids = conversations.column("id")
    for name, table in (("entries", entries), ("messages", messages), ("chunks", chunks)):
        outside = pc.filter(
            table.column("conversation_id"), pc.invert(pc.is_in(table["conversation_id"], ids))
        )
        if len(outside):
            raise ValueError(
                f"{name} of conversation {outside[0]} are in the batch without the conversation"
            )
    run_in_transaction(con, batch, ("merge_conversations.sql", "merge_entries.sql"))


def record_export_run(con: duckdb.DuckDBPyConnection, run: Mapping[str, Any]) -> None:
    """Insert or replace an export run's row (keys: the export_runs columns, run_id required)."""
    if not run.get("run_id"):
        raise ValueError("an export run needs a run_id")
    run_in_transaction(con, {"batch_export_run": export_run_table(run)}, ("merge_export_run.sql",))


def record_export_failures(
    con: duckdb.DuckDBPyConnection, failures: Sequence[Mapping[str, Any]]
) -> None:
    """Record failures (keys: the export_failures columns); the same failure twice is one row."""
    if failures:
        table = export_failures_table(failures)
        run_in_transaction(con, {"batch_export_failures": table}, ("merge_export_failures.sql",))


def stored_updated_at(con: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """Each stored conversation's updated_at (UTC): what an incremental run compares against."""
    return dict(con.execute(sql_text("stored_updated_at.sql")).fetchall())


def _checked(table: pa.Table, schema: pa.Schema, name: str) -> pa.Table:
    """The table itself, if it has the export schema the SQL expects."""
    if not table.schema.equals(schema):
        raise ValueError(f"the {name} table does not have the schema of transform.schemas")
    return table


def run_in_transaction(
    con: duckdb.DuckDBPyConnection, relations: Mapping[str, pa.Table], sql_files: Sequence[str]
) -> None:
    """Expose ``relations`` under their names and run the SQL files in one transaction.

    A failed statement or COMMIT is the error raised: the rollback after it may fail too (a
    failed COMMIT ends the transaction), and must not hide it.
    """
    for name, table in relations.items():
        con.register(name, table)
    needed = BASE_MEMORY_LIMIT + int(
        MERGE_MEMORY_FACTOR * sum(t.nbytes for t in relations.values())
    )
    raised = needed > 2 * BASE_MEMORY_LIMIT
    try:
        if raised:
            _set_memory_limit(con, needed)
        con.begin()
        try:
            for sql_file in sql_files:
                con.execute(sql_text(sql_file))
            con.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            raise
        if raised:
            # Committed rows stay in memory until a checkpoint writes them to the file.
            con.execute("CHECKPOINT")
    finally:
        for name in relations:
            con.unregister(name)
        if raised:
            # Lowering the cap can fail only while an earlier error propagates: keep that one.
            with contextlib.suppress(duckdb.Error):
                _set_memory_limit(con, BASE_MEMORY_LIMIT)


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit_bytes: int) -> None:
    con.execute(sql_text("set_memory_limit.sql"), {"limit": f"{limit_bytes}B"})

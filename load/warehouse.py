"""Open the DuckDB warehouse with its tables and views, and merge export batches into it.

Every merge runs in one transaction, so a run killed at any point leaves each batch either
fully in or fully out; re-merging the same batch leaves the same rows. A merge reads the batch's
Arrow tables in place (``con.register``) rather than its Parquet parts: the flow already holds
them in memory, and reading the parts back would only add decoding; both hold the same rows.
A connection is for one thread at a time (use ``con.cursor()`` per thread).
"""

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from load.lock_wait import LockWait, WarehouseLocked
from load.read_socket import server_answers
from load.sql_files import sql_text as sql_text
from load.storage_errors import StorageError, storage_error
from load.warehouse_upgrade import upgrade_to_workspaces
from transform.workspaces import DEFAULT_WORKSPACE, with_workspace

SCHEMA_FILES = (
    "export/schema.sql",
    "replay/schema.sql",
    "evals/schema.sql",
    "export/views.sql",
    "evals/views.sql",
)
WAREHOUSE_FILE = "warehouse.duckdb"
# DuckDB works on vectors of 2,048 rows and keeps a transaction's inserted rows in memory until
# its commit, so a batch of a few huge entries (a 100 MB history) needs memory in proportion to
# the batch, not to a vector: a merge raises the cap to at least this many times the batch's
# Arrow bytes (measured: 1.4x refuses, 1.7x suffices) and lowers it back after.
MERGE_MEMORY_FACTOR = 2
# Rows are inserted a slice of at most this many bytes at a time: DuckDB evaluates the generated
# columns (parsing raw) of a whole vector at once, several times the bytes of its rows, so a
# vector of a hundred 1 MB entries would need far more memory than the batch.
INSERT_SLICE_BYTES = 8 * 2**20
# Each table's rows go in through their own statement (sql/export/insert_<table>.sql).
Step = tuple[str, Mapping[str, pa.Table]]
_SIZE_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_SIZE_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def warehouse_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the warehouse of a data directory lives."""
    return Path(data_dir) / WAREHOUSE_FILE


def open_warehouse(
    data_dir: str | os.PathLike[str],
    read_only: bool = False,
    limits: Mapping[str, str | int] | None = None,
    lock_wait: LockWait | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect to ``<data_dir>/warehouse.duckdb`` with every table and view in place (UTC).

    ``limits`` (DuckDB settings such as memory_limit and threads) default to DuckDB's own. A
    read-only open of a held file raises WarehouseLocked at once (load.read_client asks the
    holder instead). A writer raises it at once when another writer holds the file (it serves
    reads); held by a reader, or a writer that serves none, it waits first (``lock_wait``).
    A writer upgrades a warehouse made before the workspace column first (warehouse_upgrade).
    """
    path = warehouse_path(data_dir)
    if read_only and not warehouse_exists(data_dir):
        raise FileNotFoundError(f"no warehouse at {path}: run an export first")
    lock_wait = lock_wait or LockWait()
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(path), read_only=read_only, config=dict(limits or {}))
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise storage_error(path, error) from error
            locked = WarehouseLocked(
                f"warehouse {path} is locked by another process; wait for it to finish"
            )
            if read_only or server_answers(data_dir):
                raise locked from None
            lock_wait.pause(locked, f"waiting for another process to release {path}")
        except OSError as error:
            raise storage_error(path.parent, error) from error
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            upgrade_to_workspaces(con, data_dir)
            for name in SCHEMA_FILES:
                con.execute(sql_text(name))
    except (duckdb.Error, OSError) as error:
        con.close()
        raise storage_error(path, error) from error
    return con


def warehouse_exists(data_dir: str | os.PathLike[str]) -> bool:
    """Whether ``data_dir`` holds a warehouse; a StorageError (cannot read) when the OS will not
    say, e.g. for a data dir inside a file, rather than a misleading "no warehouse"."""
    path = warehouse_path(data_dir)
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise StorageError(path, error.strerror or str(error), action="read") from None
    return True


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
    workspace: str = DEFAULT_WORKSPACE,
) -> None:
    """Upsert a batch's conversations and replace their entries, messages and chunks, atomically,
    in ``workspace`` (the tables come without the column; another workspace is left alone).

    Every conversation in ``conversations`` counts as fully re-fetched: its stored entries,
    messages and chunks are replaced by the batch's (possibly none).
    """
    batch = {
        "batch_conversations": _checked(con, conversations, workspace, "conversations"),
        "batch_entries": _checked(con, entries, workspace, "entries"),
        "batch_messages": _checked(con, messages, workspace, "messages"),
        "batch_chunks": _checked(con, chunks, workspace, "content_chunks"),
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
    replaced = {"batch_conversations": batch["batch_conversations"]}
    steps: list[Step] = [
        ("export/merge_conversations.sql", replaced),
        ("export/delete_replaced_rows.sql", replaced),
    ]
    for name, target in (
        ("batch_entries", "entries"),
        ("batch_messages", "messages"),
        ("batch_chunks", "content_chunks"),
    ):
        sql_file = f"export/insert_{target}.sql"
        steps += [(sql_file, {"batch_rows": rows}) for rows in _slices(batch[name])]
    run_steps_in_transaction(con, steps)


def record_export_run(
    con: duckdb.DuckDBPyConnection, run: pa.Table, workspace: str = DEFAULT_WORKSPACE
) -> None:
    """Insert or replace an export run's row (from transform.export_runs.export_run_table)."""
    table = _checked(con, run, workspace, "export_runs")
    run_in_transaction(con, {"batch_export_run": table}, ("export/merge_run.sql",))


def mark_dead_runs_interrupted(con: duckdb.DuckDBPyConnection) -> None:
    """Mark as interrupted every export run left running by a process that was killed.

    Only for a connection that writes: it holds the warehouse's one write lock, so a run still
    marked running has no live process behind it.
    """
    con.execute(sql_text("export/interrupted_runs.sql"))


def other_origins(con: duckdb.DuckDBPyConnection, origin: str, workspace: str) -> list[str]:
    """The APIs (warehouse_origin.origin) that filled ``workspace`` here, other than ``origin``."""
    parameters = {"origin": origin, "workspace": workspace}
    rows = con.execute(sql_text("export/other_origins.sql"), parameters).fetchall()
    return [name for (name,) in rows]


def record_origin(
    con: duckdb.DuckDBPyConnection,
    origin: str,
    base_url: str,
    emulator: bool,
    run_id: str,
    workspace: str,
) -> None:
    """Remember that ``run_id`` exported ``workspace`` from ``origin`` (kept: the first run)."""
    con.execute(
        sql_text("export/record_origin.sql"),
        {
            "workspace": workspace,
            "origin": origin,
            "base_url": base_url,
            "emulator": emulator,
            "run_id": run_id,
        },
    )


def record_export_failures(
    con: duckdb.DuckDBPyConnection, failures: pa.Table, workspace: str = DEFAULT_WORKSPACE
) -> None:
    """Record failures (from export_failures_table); the same failure twice is one row."""
    if failures.num_rows:
        table = _checked(con, failures, workspace, "export_failures")
        run_in_transaction(con, {"batch_export_failures": table}, ("export/merge_failures.sql",))


def stored_updated_at(
    con: duckdb.DuckDBPyConnection, workspace: str = DEFAULT_WORKSPACE
) -> pa.Table:
    """Each stored conversation's id and updated_at (UTC) in ``workspace``, as Arrow: what an
    incremental run of that workspace compares against (transform.updated_at_index holds it
    compactly; a dict of a million would take ~170 MB)."""
    query = sql_text("export/stored_updated_at.sql")
    return con.sql(query, params={"workspace": workspace}).to_arrow_table()


def _checked(
    con: duckdb.DuckDBPyConnection, table: pa.Table, workspace: str, target: str
) -> pa.Table:
    """The table with its workspace column, if it then has the stored columns of the warehouse
    table it goes into, in order (its generated columns are read from raw).

    Their types agree by construction: tests/test_table_shapes.py holds the DDL and the Arrow
    schemas of transform.schemas (after the workspace) to the same columns and types.
    """
    stored = with_workspace(table, workspace)
    rows = con.execute(sql_text("export/stored_columns.sql"), {"table": target}).fetchall()
    if stored.column_names != [name for (name,) in rows]:
        raise ValueError(f"the {target} table does not have the schema of the warehouse's")
    return stored


def _slices(table: pa.Table) -> list[pa.Table]:
    """The table in consecutive slices of at most INSERT_SLICE_BYTES of raw JSON each (a row
    larger than that alone), so that no vector DuckDB evaluates holds more."""
    if not table.num_rows:
        return [table]
    sizes = pc.binary_length(table.column("raw")).to_pylist()
    slices: list[pa.Table] = []
    start = held = 0
    for row, size in enumerate(sizes):
        if held and held + size > INSERT_SLICE_BYTES:
            slices.append(table.slice(start, row - start))
            start, held = row, 0
        held += size
    slices.append(table.slice(start))
    return slices


def run_in_transaction(
    con: duckdb.DuckDBPyConnection, relations: Mapping[str, pa.Table], sql_files: Sequence[str]
) -> None:
    """Expose ``relations`` under their names and run the SQL files in one transaction."""
    run_steps_in_transaction(con, [(sql_file, relations) for sql_file in sql_files])


def run_steps_in_transaction(con: duckdb.DuckDBPyConnection, steps: Sequence[Step]) -> None:
    """Run each step's SQL file with its relations exposed under their names, all in one
    transaction.

    A failed statement or COMMIT is the error raised: the rollback after it may fail too (a
    failed COMMIT ends the transaction), and must not hide it.
    """
    tables = {id(table): table for _, relations in steps for table in relations.values()}
    configured = _memory_limit(con)
    needed = configured + MERGE_MEMORY_FACTOR * sum(t.nbytes for t in tables.values())
    raised = needed > 2 * configured
    try:
        if raised:
            _set_memory_limit(con, f"{needed}B")
        con.begin()
        try:
            for sql_file, relations in steps:
                _run_with(con, sql_file, relations)
            con.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            _unregister_all(con, steps)
            raise
        if raised:
            # Committed rows stay in memory until a checkpoint writes them to the file.
            con.execute("CHECKPOINT")
    finally:
        if raised:
            # Lowering the cap can fail only while an earlier error propagates: keep that one.
            with contextlib.suppress(duckdb.Error):
                _set_memory_limit(con, f"{configured}B")


def _run_with(
    con: duckdb.DuckDBPyConnection, sql_file: str, relations: Mapping[str, pa.Table]
) -> None:
    """Run one SQL file with ``relations`` exposed under their names for its duration (after a
    failure, the transaction's rollback comes first: see _unregister_all)."""
    for name, table in relations.items():
        con.register(name, table)
    con.execute(sql_text(sql_file))
    for name in relations:
        con.unregister(name)


def _unregister_all(con: duckdb.DuckDBPyConnection, steps: Sequence[Step]) -> None:
    """Drop every relation the steps may have left registered (an aborted transaction refuses
    to, until it is rolled back)."""
    for _, relations in steps:
        for name in relations:
            with contextlib.suppress(duckdb.Error):
                con.unregister(name)


def _memory_limit(con: duckdb.DuckDBPyConnection) -> int:
    """The connection's memory cap in bytes (DuckDB shows it rounded, such as '61.0 MiB')."""
    shown = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    number, unit = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", shown).groups()
    return int(float(number) * _SIZE_UNITS[unit.upper()])


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    con.execute(sql_text("export/set_memory_limit.sql"), {"limit": limit})

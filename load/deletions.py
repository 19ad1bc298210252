"""Conversations the API no longer has: record what a listing walked, mark the absent, purge.

A complete listing's ids go to a DuckDB temp table, a few thousand at a time, rather than a
Python set: at 1,000,000 conversations a set of ids holds ~100 MB of the heap, the table a
bounded buffer that DuckDB spills. The stored conversations missing from it are the candidates;
the flow confirms each with a get before marking it (a list walked while conversations are
deleted can skip live ones: offset pages shift under it). Everything here stays within one
workspace: a listing of one key says nothing of another's conversations.
"""

import os
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from load.parquet import part_paths, rewrite_part_without
from load.warehouse import run_in_transaction, sql_text
from transform.workspaces import DEFAULT_WORKSPACE

# The Parquet tables of the export and the column naming each row's conversation.
PURGED_TABLES = (
    ("conversations", "id"),
    ("entries", "conversation_id"),
    ("messages", "conversation_id"),
    ("content_chunks", "conversation_id"),
)
_IDS_PER_INSERT = 5_000


class ListedIds:
    """The ids one listing of ``workspace`` walked, kept in a temp table of a cursor of its own.

    Temp tables belong to one DuckDB connection: the cursor that records the ids also reads
    them back (``absent``, ``restore_listed``). Close it when the run ends.
    """

    def __init__(
        self, warehouse: duckdb.DuckDBPyConnection, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        self._workspace = {"workspace": workspace}
        self._con = warehouse.cursor()
        self._con.execute(sql_text("export/listed_ids.sql"))
        self._pending: list[str] = []

    def add(self, ids: list[str]) -> None:
        """Record a page's ids (written to DuckDB in blocks of a few thousand)."""
        self._pending.extend(ids)
        if len(self._pending) >= _IDS_PER_INSERT:
            self.flush()

    def flush(self) -> None:
        """Write the ids still held in memory to the temp table."""
        if self._pending:
            block = pa.table({"id": pa.array(self._pending, pa.string())})
            self._con.register("listed_block", block)
            try:
                self._con.execute(sql_text("export/insert_listed_ids.sql"))
            finally:
                self._con.unregister("listed_block")
            self._pending = []

    def absent(self) -> pa.Array:
        """The stored conversations not marked deleted that the listing did not walk."""
        self.flush()
        query = sql_text("export/absent_conversations.sql")
        table = self._con.sql(query, params=self._workspace).to_arrow_table()
        return table.column("id").combine_chunks()

    def restore_listed(self) -> int:
        """Un-mark the conversations marked deleted that were listed again; how many."""
        self.flush()
        return _count(self._con.execute(sql_text("export/restore_listed.sql"), self._workspace))

    def mark_deleted(self, ids: pa.Array, run_id: str, deleted_at: datetime) -> int:
        """Mark ``ids`` (confirmed gone) as deleted by ``run_id``; how many were newly marked."""
        self._con.register("confirmed_deleted", pa.table({"id": ids}))
        try:
            cursor = self._con.execute(
                sql_text("export/mark_deleted.sql"),
                {**self._workspace, "run_id": run_id, "deleted_at": deleted_at},
            )
            return _count(cursor)
        finally:
            self._con.unregister("confirmed_deleted")

    def close(self) -> None:
        """Drop the temp table with the cursor that holds it."""
        self._con.close()


def purge_deleted(
    warehouse: duckdb.DuckDBPyConnection,
    data_dir: str | os.PathLike[str],
    workspace: str = DEFAULT_WORKSPACE,
) -> int:
    """Remove every conversation of ``workspace`` marked deleted from the Parquet parts, then
    from DuckDB.

    Parts first: a run killed in between leaves the conversations marked, and the next purge
    finishes the job; the other way round would leave rows in Parquet no purge could find.
    Returns how many conversations were purged.
    """
    in_workspace = {"workspace": workspace}
    ids = warehouse.sql(sql_text("export/deleted_ids.sql"), params=in_workspace).to_arrow_table()
    if not ids.num_rows:
        return 0
    warehouse.register("purged_ids", ids)
    try:
        for table_name, key in PURGED_TABLES:
            files = [str(path) for path in part_paths(data_dir, table_name)]
            if not files:
                continue
            holding = warehouse.execute(
                sql_text("export/parts_holding.sql"),
                {**in_workspace, "files": files, "key_pattern": f"^{key}$"},
            ).fetchall()
            for (path,) in holding:
                rewrite_part_without(Path(path), workspace, key, ids.column("id"))
    finally:
        warehouse.unregister("purged_ids")
    run_in_transaction(warehouse, {"purged_ids": ids}, ("export/purge_deleted.sql",))
    return ids.num_rows


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    """The row count an UPDATE or DELETE reports."""
    row = cursor.fetchone()
    return int(row[0]) if row else 0

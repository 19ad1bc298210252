"""Upgrade a warehouse made before the workspace column in place, when a writer opens it.

Its export tables are rebuilt with the workspace first in every key, every existing row in the
default workspace, in one transaction: a run killed meanwhile leaves the old warehouse, and the
next open upgrades it again. Its Parquet parts get the column first (each part rewritten
atomically; a part that has it already is left alone), so a kill between the two steps is safe.
Entries' text and content and chunks' text are dropped from both: they are read from raw now.
"""

import contextlib
import os

import duckdb
import pyarrow as pa

from load.parquet import upgrade_parts
from load.sql_files import sql_text
from transform.schemas import CONTENT_CHUNKS, CONVERSATIONS, ENTRIES
from transform.workspaces import DEFAULT_WORKSPACE

# The export tables written as Parquet parts, and the Arrow schema of their batches.
PARQUET_TABLES: dict[str, pa.Schema] = {
    "conversations": CONVERSATIONS,
    "entries": ENTRIES,
    "messages": ENTRIES,
    "content_chunks": CONTENT_CHUNKS,
}


def upgrade_to_workspaces(con: duckdb.DuckDBPyConnection, data_dir: str | os.PathLike[str]) -> bool:
    """Rebuild the export tables with the workspace column if they lack it; True if it did."""
    (needed,) = con.execute(sql_text("export/needs_workspace_upgrade.sql")).fetchone()
    if not needed:
        return False
    for table, schema in PARQUET_TABLES.items():
        upgrade_parts(data_dir, table, schema, DEFAULT_WORKSPACE)
    con.begin()
    try:
        for name in (
            "export/upgrade_workspace_rename.sql",
            "export/schema.sql",
            "export/upgrade_workspace_copy.sql",
        ):
            con.execute(sql_text(name))
        con.commit()
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.rollback()
        raise
    return True

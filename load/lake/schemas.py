"""The lake's table schemas: the export's Arrow schemas with a leading ``workspace`` column.

Several workspaces (API keys) export into the same tables, so the workspace is part of every
key, and the tables are partitioned by it: a writer's merge touches only its own partition,
which is what lets two writers of different workspaces commit at the same time.
"""

import pyarrow as pa

from transform.schemas import (
    CONTENT_CHUNKS,
    CONVERSATIONS,
    ENTRIES,
    EXPORT_FAILURES,
    EXPORT_RUNS,
)

WORKSPACE = "workspace"


def _with_workspace(schema: pa.Schema) -> pa.Schema:
    return schema.insert(0, pa.field(WORKSPACE, pa.string(), nullable=False))


LAKE_SCHEMAS: dict[str, pa.Schema] = {
    "conversations": _with_workspace(CONVERSATIONS),
    "entries": _with_workspace(ENTRIES),
    "messages": _with_workspace(ENTRIES),
    "content_chunks": _with_workspace(CONTENT_CHUNKS),
    "export_runs": _with_workspace(EXPORT_RUNS),
    "export_failures": _with_workspace(EXPORT_FAILURES),
}

# The columns that identify a row of each table (the workspace first, always).
LAKE_KEYS: dict[str, tuple[str, ...]] = {
    "conversations": (WORKSPACE, "id"),
    "entries": (WORKSPACE, "conversation_id", "id"),
    "messages": (WORKSPACE, "conversation_id", "id"),
    "content_chunks": (WORKSPACE, "conversation_id", "entry_id", "chunk_index"),
    "export_runs": (WORKSPACE, "run_id"),
}

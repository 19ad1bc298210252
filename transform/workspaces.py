"""The workspace column: which API workspace (one key) a stored row was exported from.

Several workspaces share one data dir, so every export table stores the workspace first, as the
first part of every key; the flattened batches and run rows carry no workspace of their own.
"""

import pyarrow as pa

WORKSPACE = "workspace"
DEFAULT_WORKSPACE = "default"
WORKSPACE_FIELD = pa.field(WORKSPACE, pa.string(), nullable=False)


def stored_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of a table as stored: ``schema`` after a leading workspace column."""
    return schema.insert(0, WORKSPACE_FIELD)


def with_workspace(table: pa.Table, workspace: str) -> pa.Table:
    """The table with a leading workspace column holding ``workspace`` on every row."""
    column = pa.repeat(pa.scalar(workspace, pa.string()), table.num_rows)
    return table.add_column(0, WORKSPACE_FIELD, column)

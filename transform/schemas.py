"""The explicit Arrow schema of every export table, so Parquet parts and DuckDB agree on types.

JSON-valued columns are JSON text in Arrow ``string`` columns; DuckDB stores them as ``JSON``.
Timestamps are microsecond UTC timestamps (DuckDB ``TIMESTAMPTZ``). An entry's ``text`` and
``content`` and a chunk's ``text`` are not here: they repeat ``raw``, so the warehouse derives
them from it (generated columns, sql/export/schema.sql) instead of holding a second copy.
"""

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

CONVERSATIONS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("model", pa.string()),
        pa.field("agent_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("description", pa.string()),
        pa.field("instructions", pa.string()),
        pa.field("tools", pa.string()),
        pa.field("completion_args", pa.string()),
        pa.field("metadata", pa.string()),
        pa.field("created_at", TIMESTAMP),
        pa.field("updated_at", TIMESTAMP),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("first_export_run", pa.string(), nullable=False),
        pa.field("last_export_run", pa.string(), nullable=False),
        pa.field("agent_version", pa.string()),
        pa.field("guardrails", pa.string()),
        pa.field("deleted_at", TIMESTAMP),
        pa.field("deleted_in_run", pa.string()),
    ]
)

ENTRIES = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("role", pa.string()),
        pa.field("created_at", TIMESTAMP),
        pa.field("completed_at", TIMESTAMP),
        pa.field("model", pa.string()),
        pa.field("agent_id", pa.string()),
        pa.field("prefix", pa.bool_()),
        pa.field("tool_call_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("arguments", pa.string()),
        pa.field("result", pa.string()),
        pa.field("info", pa.string()),
        pa.field("previous_agent_id", pa.string()),
        pa.field("previous_agent_name", pa.string()),
        pa.field("next_agent_id", pa.string()),
        pa.field("next_agent_name", pa.string()),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("export_run", pa.string(), nullable=False),
        pa.field("confirmation_status", pa.string()),
    ]
)

CONTENT_CHUNKS = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("entry_id", pa.string(), nullable=False),
        pa.field("chunk_index", pa.int32(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("url", pa.string()),
        pa.field("tool", pa.string()),
        pa.field("title", pa.string()),
        pa.field("file_id", pa.string()),
        pa.field("file_name", pa.string()),
        pa.field("file_type", pa.string()),
        pa.field("document_name", pa.string()),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("export_run", pa.string(), nullable=False),
    ]
)

EXPORT_RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("started_at", TIMESTAMP),
        pa.field("finished_at", TIMESTAMP),
        pa.field("fetch_started", TIMESTAMP),
        pa.field("fetch_finished", TIMESTAMP),
        pa.field("status", pa.string()),
        pa.field("mode", pa.string()),
        pa.field("listed", pa.int64()),
        pa.field("fetched", pa.int64()),
        pa.field("unchanged", pa.int64()),
        pa.field("failed", pa.int64()),
        pa.field("deleted", pa.int64()),
        pa.field("entries_written", pa.int64()),
        pa.field("messages_written", pa.int64()),
        pa.field("requests", pa.int64()),
        pa.field("retries", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("base_url", pa.string()),
        pa.field("marked_deleted", pa.int64()),
        pa.field("purged", pa.int64()),
        pa.field("rate_limited", pa.int64()),
        pa.field("pace_rps", pa.float64()),
    ]
)

EXPORT_FAILURES = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("endpoint", pa.string(), nullable=False),
        pa.field("status", pa.int32()),
        pa.field("reason", pa.string()),
        pa.field("failed_at", TIMESTAMP),
    ]
)

# Which APIs filled the warehouse (flows.export.origin); sql/export/schema.sql has its DDL.
WAREHOUSE_ORIGIN = pa.schema(
    [
        pa.field("origin", pa.string(), nullable=False),
        pa.field("base_url", pa.string(), nullable=False),
        pa.field("emulator", pa.bool_(), nullable=False),
        pa.field("first_run", pa.string(), nullable=False),
        pa.field("recorded_at", TIMESTAMP, nullable=False),
    ]
)

"""Explicit Arrow schemas of the replay tables, so Parquet parts and DuckDB agree on every type."""

import pyarrow as pa

from transform.schemas import TIMESTAMP

REPLAY_RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("started_at", TIMESTAMP, nullable=False),
        pa.field("finished_at", TIMESTAMP),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("repeat", pa.int32(), nullable=False),
        pa.field("ok", pa.int64()),
        pa.field("errors", pa.int64()),
        pa.field("stream", pa.bool_(), nullable=False),
        pa.field("base_url", pa.string(), nullable=False),
        pa.field("options", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
    ]
)

REPLAY_RESULTS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("repeat_index", pa.int32(), nullable=False),
        pa.field("row_number", pa.int32(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("source_conversation_id", pa.string()),
        pa.field("from_entry_id", pa.string()),
        pa.field("conversation_id", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("recovered", pa.bool_(), nullable=False),
        pa.field("attempts", pa.int32(), nullable=False),
        pa.field("output_text", pa.string()),
        pa.field("output_entry_id", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("total_tokens", pa.int64()),
        pa.field("ttft_ms", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("events", pa.int32(), nullable=False),
        pa.field("started_at", TIMESTAMP, nullable=False),
        pa.field("finished_at", TIMESTAMP, nullable=False),
        pa.field("stream", pa.bool_(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("model", pa.string()),
        pa.field("agent_id", pa.string()),
        pa.field("thread", pa.string()),
        pa.field("extra", pa.string(), nullable=False),
        pa.field("finish", pa.string()),
        pa.field("function_calls", pa.string()),
        pa.field("outputs", pa.string()),
        pa.field("usage", pa.string()),
        pa.field("last_agent_id", pa.string()),
        pa.field("variant", pa.string(), nullable=False),
    ]
)

REPLAY_EVENTS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("repeat_index", pa.int32(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("attempt", pa.int32(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("received_at", TIMESTAMP, nullable=False),
        pa.field("elapsed_ms", pa.float64(), nullable=False),
        pa.field("data", pa.string(), nullable=False),
        pa.field("variant", pa.string(), nullable=False),
    ]
)

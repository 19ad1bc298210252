"""Arrow schema of the verdict table, one row per (result, check), so Parquet and DuckDB agree."""

import pyarrow as pa

from transform.schemas import TIMESTAMP

REPLAY_CHECKS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("repeat_index", pa.int32(), nullable=False),
        pa.field("variant", pa.string(), nullable=False),
        pa.field("check_index", pa.int32(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("pass", pa.bool_()),
        pa.field("score", pa.float64()),
        pa.field("reason", pa.string()),
        pa.field("grader", pa.string(), nullable=False),
        pa.field("graded_at", TIMESTAMP),
    ]
)

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

# The checks a run's verdicts were graded with, a row each: the check cells as JSON (re-parsed
# with transform.checks, so `grade RUN_ID` needs no CSV), and the threshold the view honours.
REPLAY_ROW_CHECKS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("description", pa.string()),
        pa.field("cells", pa.string(), nullable=False),
    ]
)

# A judge's verdict on one (judge model, rubric, output), keyed by transform.judge's cache key.
JUDGE_CACHE = pa.schema(
    [
        pa.field("cache_key", pa.string(), nullable=False),
        pa.field("judge_model", pa.string(), nullable=False),
        pa.field("pass", pa.bool_(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("judged_at", TIMESTAMP, nullable=False),
    ]
)

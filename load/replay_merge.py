"""Write replay batches to Parquet and merge them into DuckDB, idempotent per (run, row, repeat).

Each batch becomes one Parquet part per table plus one DuckDB transaction that replaces the rows
of the same keys, so a rerun's result replaces an earlier error. When a resumed run finishes, its
parts are rewritten as one part per table from the merged rows, so Parquet holds no stale
duplicates (a first attempt's batch parts hold each row once: they are left as they are).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from load.parquet import part_name, write_part
from load.warehouse import run_in_transaction, sql_text
from transform.replay_schemas import REPLAY_EVENTS, REPLAY_RESULTS, REPLAY_RUNS

RESULTS_TABLE, EVENTS_TABLE, RUNS_TABLE = "replay_results", "replay_events", "replay_runs"


@dataclass(frozen=True)
class StoredResult:
    """What an earlier attempt of a run stored for one (row, repeat)."""

    status: str
    conversation_id: str | None


def store_replay_batch(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    part_name: str,
    results: pa.Table,
    events: pa.Table,
) -> None:
    """Write a batch's results and events as Parquet parts, then merge both into DuckDB."""
    write_part(results, data_dir, RESULTS_TABLE, part_name)
    write_part(events, data_dir, EVENTS_TABLE, part_name)
    run_in_transaction(
        con,
        {"replay_batch_results": results, "replay_batch_events": events},
        ("replay/merge_results.sql",),
    )


def store_replay_run(
    con: duckdb.DuckDBPyConnection, data_dir: Path, run_id: str, run: pa.Table
) -> None:
    """Write (or replace) the replay_runs row of a run, in Parquet and DuckDB."""
    write_part(run, data_dir, RUNS_TABLE, run_id)
    run_in_transaction(con, {"replay_batch_run": run}, ("replay/merge_run.sql",))


def mark_dead_replay_runs_interrupted(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Mark as interrupted every replay run left running by a process that was killed.

    Only for a connection that writes: it holds the warehouse's one write lock, so a run still
    marked running has no live process behind it. Their Parquet rows are rewritten to match.
    """
    marked = con.sql(sql_text("replay/interrupted_runs.sql")).to_arrow_table()
    for index in range(marked.num_rows):
        run = marked.slice(index, 1).cast(REPLAY_RUNS)
        write_part(run, data_dir, RUNS_TABLE, run.column("run_id")[0].as_py())


def compact_run_parts(con: duckdb.DuckDBPyConnection, data_dir: Path, run_id: str) -> None:
    """Rewrite a run's batch parts as one part per table holding exactly the merged rows."""
    for table_name, schema, sql_name in (
        (RESULTS_TABLE, REPLAY_RESULTS, "replay/run_results.sql"),
        (EVENTS_TABLE, REPLAY_EVENTS, "replay/run_events.sql"),
    ):
        merged = con.sql(sql_text(sql_name), params={"run_id": run_id}).to_arrow_table()
        written = write_part(merged.cast(schema), data_dir, table_name, run_id)
        for part in written.parent.glob(f"{batch_part_prefix(run_id)}*"):
            part.unlink()


def batch_part_prefix(run_id: str) -> str:
    """The file-name prefix of a run's batch parts (its compact part is named by the run id)."""
    return f"{run_id}.batch-"


def batch_part_name(run_id: str, attempt_stamp: str, batch_number: int) -> str:
    """The Parquet part name of one batch of one attempt of a run."""
    return part_name(f"{batch_part_prefix(run_id)}{attempt_stamp}", batch_number)


def stored_results(
    con: duckdb.DuckDBPyConnection, run_id: str
) -> dict[str, dict[tuple[str, int], StoredResult]]:
    """The results an earlier attempt of this run stored, by variant then (row_id, repeat)."""
    rows = con.execute(sql_text("replay/previous_results.sql"), {"run_id": run_id}).fetchall()
    stored: dict[str, dict[tuple[str, int], StoredResult]] = {}
    for row_id, repeat, status, cid, variant in rows:
        stored.setdefault(variant, {})[(row_id, repeat)] = StoredResult(status, cid)
    return stored


def run_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Counts, tokens and latency / time-to-first-token percentiles over a run's results."""
    cursor = con.execute(sql_text("replay/run_summary.sql"), {"run_id": run_id})
    names = [column[0] for column in cursor.description]
    (row,) = cursor.fetchall()
    return dict(zip(names, row, strict=True))

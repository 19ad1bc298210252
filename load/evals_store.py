"""Write eval verdicts, the checks they were graded with, and judge verdicts: Parquet and DuckDB.

A run's verdicts and row checks are one Parquet part each, named by the run (grading again
replaces the part, written atomically), merged into DuckDB in one transaction; new judge
verdicts add a part of their own and are merged into `judge_cache`.
"""

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from load.parquet import write_part
from load.read_client import ReadConnection
from load.warehouse import run_in_transaction, sql_text

CHECKS_TABLE, ROW_CHECKS_TABLE, JUDGE_CACHE_TABLE = (
    "replay_checks",
    "replay_row_checks",
    "judge_cache",
)


def store_grading(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    run_id: str,
    verdicts: pa.Table,
    row_checks: pa.Table,
) -> None:
    """Replace a run's verdicts and row checks (Parquet parts, then one DuckDB transaction)."""
    write_part(verdicts, data_dir, CHECKS_TABLE, run_id)
    write_part(row_checks, data_dir, ROW_CHECKS_TABLE, run_id)
    run_in_transaction(
        con,
        {
            "graded_run": pa.table({"run_id": [run_id]}),
            "graded_checks": verdicts,
            "graded_row_checks": row_checks,
        },
        ("evals/merge_grading.sql",),
    )


def store_judgements(
    con: duckdb.DuckDBPyConnection, data_dir: Path, part_name: str, judgements: pa.Table
) -> None:
    """Add new judge verdicts to the cache (a Parquet part, then DuckDB)."""
    if judgements.num_rows == 0:
        return
    write_part(judgements, data_dir, JUDGE_CACHE_TABLE, part_name)
    run_in_transaction(con, {"new_judgements": judgements}, ("evals/merge_judgements.sql",))


def cached_judgements(
    con: duckdb.DuckDBPyConnection, keys: Sequence[str]
) -> dict[str, tuple[bool, float, str]]:
    """The cached (pass, score, reason) of each key that has one."""
    rows = con.execute(sql_text("evals/cached_judgements.sql"), {"keys": list(keys)}).fetchall()
    return {key: (passed, score, reason) for key, passed, score, reason in rows}


def stored_row_checks(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str]]:
    """(row_id, cells JSON) of the checks a run was last graded with."""
    return con.execute(sql_text("evals/row_checks.sql"), {"run_id": run_id}).fetchall()


def read_arrow(con: ReadConnection, sql_name: str, run_ids: Sequence[str]) -> pa.Table:
    """The rows a `sql/evals` query returns for the given runs, as Arrow."""
    return con.sql(sql_text(sql_name), params={"run_ids": list(run_ids)}).to_arrow_table()


def known_runs(con: ReadConnection, run_ids: Sequence[str]) -> set[str]:
    """Which of `run_ids` the warehouse has a replay_runs row for."""
    rows = con.execute(sql_text("evals/known_runs.sql"), {"run_ids": list(run_ids)}).fetchall()
    return {run_id for (run_id,) in rows}

"""Compare stored replay runs: results and verdicts read from DuckDB as Arrow, compared as polars
frames (transform.compare), plus the per-variant pass rates and flaky rows of each run."""

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from load.evals_store import read_arrow
from load.read_client import ReadConnection
from transform.check_schemas import REPLAY_CHECKS
from transform.compare import RunComparison, compare_runs
from transform.outcomes import repeat_summary, row_verdicts, variant_pass_rates
from transform.prices import PriceTable


@dataclass(frozen=True)
class Comparison:
    """`compared` (runs, regressions, fixes), pass rates per (run, variant), and flaky rows."""

    compared: RunComparison
    variants: pl.DataFrame
    flaky: pl.DataFrame


def _frame(con: ReadConnection, sql_name: str, run_ids: Sequence[str]) -> pl.DataFrame:
    frame = pl.from_arrow(read_arrow(con, sql_name, run_ids))
    assert isinstance(frame, pl.DataFrame)
    return frame


def load_comparison(
    con: ReadConnection, run_ids: Sequence[str], prices: PriceTable | None
) -> Comparison:
    """Compare `run_ids` (the first is the baseline) as they are stored and graded."""
    results = _frame(con, "evals/grading_results.sql", run_ids)
    verdicts = _frame(con, "evals/run_verdicts.sql", run_ids)
    if verdicts.is_empty():
        verdicts = pl.from_arrow(REPLAY_CHECKS.empty_table())
        assert isinstance(verdicts, pl.DataFrame)
    thresholds = _frame(con, "evals/run_thresholds.sql", run_ids)
    rows = pl.concat(
        [
            row_verdicts(
                verdicts.filter(pl.col("run_id") == run_id),
                thresholds.filter(pl.col("run_id") == run_id).drop("run_id"),
            )
            for run_id in run_ids
        ]
    )
    return Comparison(
        compared=compare_runs(results, verdicts, rows, run_ids, prices),
        variants=variant_pass_rates(rows),
        flaky=repeat_summary(rows).filter(pl.col("flaky")),
    )

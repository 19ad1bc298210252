"""From check verdicts to outcomes: a row's verdict, its pass rate over repeats, a run's rate.

A row passes when the share of its passing checks reaches its threshold. While llm-rubric checks
wait for their judge, a row whose outcome they could still change is null (pending), and pending
rows count in no rate.
"""

import polars as pl

from transform.grading import RESULT_KEYS

ROW_KEYS = ("run_id", "row_id", "variant")


def row_verdicts(verdicts: pl.DataFrame, thresholds: pl.DataFrame) -> pl.DataFrame:
    """One line per result: checks, passed, pending, share, threshold and pass (null: pending).

    `thresholds` is `thresholds_frame(...)`; a row missing from it needs every check to pass.
    """
    counted = verdicts.group_by(RESULT_KEYS).agg(
        checks=pl.len().cast(pl.Int64),
        passed=pl.col("pass").sum().cast(pl.Int64),
        pending=pl.col("pass").null_count().cast(pl.Int64),
    )
    share = pl.col("passed") / pl.col("checks")
    best_share = (pl.col("passed") + pl.col("pending")) / pl.col("checks")
    return (
        counted.join(thresholds.select("row_id", "threshold"), on="row_id", how="left")
        .with_columns(share=share, threshold=pl.col("threshold").fill_null(1.0))
        .with_columns(
            pl.when(pl.col("share") >= pl.col("threshold"))
            .then(pl.lit(True))
            .when(best_share < pl.col("threshold"))
            .then(pl.lit(False))
            .alias("pass")
        )
        .sort(RESULT_KEYS)
    )


def repeat_summary(rows: pl.DataFrame) -> pl.DataFrame:
    """Per (run_id, row_id, variant): repeats, passed, failed, pending, pass_rate and flaky.

    flaky: the row both passed and failed across its repeats.
    """
    return (
        rows.group_by(ROW_KEYS)
        .agg(
            repeats=pl.len().cast(pl.Int64),
            passed=pl.col("pass").sum().cast(pl.Int64),
            failed=(~pl.col("pass")).sum().cast(pl.Int64),
            pending=pl.col("pass").null_count().cast(pl.Int64),
        )
        .with_columns(
            pass_rate=_rate(),
            flaky=(pl.col("passed") > 0) & (pl.col("failed") > 0),
        )
        .sort(ROW_KEYS)
    )


def run_pass_rates(rows: pl.DataFrame) -> pl.DataFrame:
    """Per run: results graded, passed, failed, pending and pass_rate (of decided results)."""
    return _pass_rates(rows, ("run_id",))


def variant_pass_rates(rows: pl.DataFrame) -> pl.DataFrame:
    """Per (run_id, variant): the same counts and pass_rate, for matrix runs."""
    return _pass_rates(rows, ("run_id", "variant"))


def _pass_rates(rows: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    return (
        rows.group_by(keys)
        .agg(
            results=pl.len().cast(pl.Int64),
            passed=pl.col("pass").sum().cast(pl.Int64),
            failed=(~pl.col("pass")).sum().cast(pl.Int64),
            pending=pl.col("pass").null_count().cast(pl.Int64),
        )
        .with_columns(pass_rate=_rate())
        .sort(keys)
    )


def _rate() -> pl.Expr:
    decided = pl.col("passed") + pl.col("failed")
    return pl.when(decided > 0).then(pl.col("passed") / decided)

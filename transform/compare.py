"""Compare graded runs: the first run is the baseline, every other run is set against it.

Results align on (row_id, repeat_index, variant) and checks on check_index with the same type and
value, so a check edited between runs is neither a regression nor a fix. The output is plain
frames, for a table, JSON or HTML renderer alike; costs come from the user's price table and are
labelled estimates.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from transform.grading import NO_VARIANT, VERDICT_SCHEMA
from transform.outcomes import run_pass_rates
from transform.prices import PriceTable, with_estimated_cost

ALIGN_KEYS = ("row_id", "repeat_index", "variant")
CHECK_KEYS = (*ALIGN_KEYS, "check_index", "type", "value")
REGRESSION = "regression"
FIX = "fix"
CHANGES_SCHEMA = {
    "baseline_run_id": pl.String,
    **{key: VERDICT_SCHEMA[key] for key in ("run_id", *CHECK_KEYS)},
    "change": pl.String,
    "baseline_reason": pl.String,
    "reason": pl.String,
    "baseline_output": pl.String,
    "output": pl.String,
}


@dataclass(frozen=True)
class RunComparison:
    """`runs`: one line per run, in the order asked. `changes`: one line per check that flipped.

    runs: run_id, results, passed, failed, pending, pass_rate, latency_p50_ms, latency_p95_ms,
    ttft_p50_ms, ttft_p95_ms, prompt_tokens, completion_tokens, estimated_cost_usd,
    unpriced_results. changes: baseline_run_id, run_id, row_id, repeat_index, variant,
    check_index, type, value, change (regression | fix), baseline_reason, reason,
    baseline_output, output.
    """

    baseline_run_id: str
    runs: pl.DataFrame
    changes: pl.DataFrame
    cost_is_estimate: bool = True

    @property
    def regressions(self) -> pl.DataFrame:
        return self.changes.filter(pl.col("change") == REGRESSION)

    @property
    def fixes(self) -> pl.DataFrame:
        return self.changes.filter(pl.col("change") == FIX)


def compare_runs(
    results: pl.DataFrame,
    verdicts: pl.DataFrame,
    rows: pl.DataFrame,
    run_ids: Sequence[str],
    prices: PriceTable | None = None,
) -> RunComparison:
    """Compare `run_ids` (baseline first) from their results, check verdicts and row verdicts.

    `rows` is `row_verdicts(...)`; results need run_id, row_id, repeat_index, output_text,
    latency_ms, ttft_ms, prompt_tokens, completion_tokens and model.
    """
    if "variant" not in results.columns:
        results = results.with_columns(variant=pl.lit(NO_VARIANT))
    results = results.filter(pl.col("run_id").is_in(run_ids)).with_columns(
        pl.col("repeat_index").cast(pl.Int32)
    )
    baseline, *others = run_ids
    changes = [_changes(results, verdicts, baseline, other) for other in others]
    return RunComparison(
        baseline_run_id=baseline,
        runs=_run_summary(results, rows, run_ids, prices or PriceTable.empty()),
        changes=pl.concat([pl.DataFrame(schema=CHANGES_SCHEMA), *changes]),
    )


def _run_summary(
    results: pl.DataFrame, rows: pl.DataFrame, run_ids: Sequence[str], prices: PriceTable
) -> pl.DataFrame:
    costed = with_estimated_cost(results, prices)
    measured = costed.group_by("run_id").agg(
        latency_p50_ms=pl.col("latency_ms").quantile(0.5, "linear"),
        latency_p95_ms=pl.col("latency_ms").quantile(0.95, "linear"),
        ttft_p50_ms=pl.col("ttft_ms").quantile(0.5, "linear"),
        ttft_p95_ms=pl.col("ttft_ms").quantile(0.95, "linear"),
        prompt_tokens=pl.col("prompt_tokens").sum(),
        completion_tokens=pl.col("completion_tokens").sum(),
        estimated_cost_usd=pl.col("estimated_cost_usd").sum(),
        unpriced_results=pl.col("estimated_cost_usd").null_count().cast(pl.Int64),
    )
    order = pl.DataFrame({"run_id": list(run_ids)}, schema={"run_id": pl.String})
    rates = run_pass_rates(rows.filter(pl.col("run_id").is_in(run_ids))).drop("results")
    return (
        order.join(measured, on="run_id", how="left", maintain_order="left")
        .join(rates, on="run_id", how="left", maintain_order="left")
        .with_columns(results=_result_counts(results, run_ids))
        .select(
            "run_id",
            "results",
            "passed",
            "failed",
            "pending",
            "pass_rate",
            "latency_p50_ms",
            "latency_p95_ms",
            "ttft_p50_ms",
            "ttft_p95_ms",
            "prompt_tokens",
            "completion_tokens",
            "estimated_cost_usd",
            "unpriced_results",
        )
    )


def _result_counts(results: pl.DataFrame, run_ids: Sequence[str]) -> pl.Series:
    counts = results.group_by("run_id").len()
    found = dict(counts.iter_rows())
    return pl.Series("results", [found.get(run_id, 0) for run_id in run_ids], dtype=pl.Int64)


def _changes(
    results: pl.DataFrame, verdicts: pl.DataFrame, baseline: str, other: str
) -> pl.DataFrame:
    def side(run_id: str, suffix: str) -> pl.DataFrame:
        checks = verdicts.filter(pl.col("run_id") == run_id).select(
            *CHECK_KEYS,
            pl.col("pass").alias(f"pass{suffix}"),
            pl.col("reason").alias(f"reason{suffix}"),
        )
        outputs = results.filter(pl.col("run_id") == run_id).select(
            *ALIGN_KEYS, pl.col("output_text").alias(f"output{suffix}")
        )
        return checks.join(outputs, on=ALIGN_KEYS, how="left")

    flipped = side(baseline, "_a").join(side(other, "_b"), on=CHECK_KEYS, how="inner")
    change = (
        pl.when(pl.col("pass_a") & ~pl.col("pass_b"))
        .then(pl.lit(REGRESSION))
        .when(~pl.col("pass_a") & pl.col("pass_b"))
        .then(pl.lit(FIX))
    )
    return (
        flipped.with_columns(change=change)
        .filter(pl.col("change").is_not_null())
        .select(
            pl.lit(baseline, pl.String).alias("baseline_run_id"),
            pl.lit(other, pl.String).alias("run_id"),
            *CHECK_KEYS,
            "change",
            baseline_reason=pl.col("reason_a"),
            reason=pl.col("reason_b"),
            baseline_output=pl.col("output_a"),
            output=pl.col("output_b"),
        )
        .cast(CHANGES_SCHEMA)
        .sort("change", *ALIGN_KEYS, "check_index", descending=[True, False, False, False, False])
    )

"""Grade a stored run: its results read from DuckDB as Arrow, graded as polars expressions, the
verdicts (and the checks they came from) written back; llm-rubric checks asked of a judge.

Deterministic checks send nothing. The judge is asked only for what `judge_cache` lacks.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from extract.client import ClientConfig, ConversationsClient
from flows.evals.judge import Judged, judge_pending, with_cache_keys
from load.evals_store import cached_judgements, read_arrow, store_grading, store_judgements
from transform.check_cells import row_checks_table
from transform.check_schemas import REPLAY_CHECKS
from transform.checks import RowChecks
from transform.grading import checks_frame, grade, thresholds_frame
from transform.judge import apply_judgements, judgements_frame, pending_judgements
from transform.outcomes import repeat_summary, row_verdicts, run_pass_rates, variant_pass_rates
from transform.prices import PriceTable


@dataclass(frozen=True)
class Judge:
    """Which model judges llm-rubric checks, and how to reach it (None: the cache only)."""

    model: str
    client_config: ClientConfig | None


@dataclass(frozen=True)
class GradeReport:
    """What grading a run found: pass rates overall and per variant, flaky rows, judge work."""

    run_id: str
    verdicts: int
    results: int
    passed: int
    failed: int
    pending: int
    pass_rate: float | None
    variants: tuple[dict[str, object], ...]  # variant_pass_rates lines
    flaky: tuple[dict[str, object], ...]  # repeat_summary lines that both passed and failed
    judge_requests: int = 0
    judge_cached: int = 0
    judge_errors: tuple[str, ...] = ()


async def grade_run(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    run_id: str,
    checks_by_row: Mapping[str, RowChecks],
    judge: Judge | None = None,
    prices: PriceTable | None = None,
) -> GradeReport:
    """Grade every stored result of `run_id` against `checks_by_row` and store the verdicts."""
    graded_at = datetime.now(UTC)
    results = pl.from_arrow(read_arrow(con, "evals/grading_results.sql", [run_id]))
    assert isinstance(results, pl.DataFrame)
    verdicts = grade(results, checks_frame(checks_by_row), graded_at, prices)
    pending = pending_judgements(verdicts, results)
    requests = cached = 0
    errors: list[str] = []
    if judge is not None and pending.height:
        judged = await _judged(con, data_dir, run_id, pending, judge, graded_at)
        verdicts = apply_judgements(verdicts, judgements_frame(judged.verdicts), graded_at)
        requests, cached, errors = judged.requests, judged.cached, judged.errors
    store_grading(
        con,
        data_dir,
        run_id,
        verdicts.sort("variant", "row_id", "repeat_index", "check_index")
        .to_arrow()
        .cast(REPLAY_CHECKS),
        row_checks_table(run_id, checks_by_row),
    )
    rows = row_verdicts(verdicts, thresholds_frame(dict(checks_by_row)))
    repeats = repeat_summary(rows)
    rates = run_pass_rates(rows).to_dicts()
    totals = rates[0] if rates else {"passed": 0, "failed": 0, "pending": 0, "pass_rate": None}
    return GradeReport(
        run_id=run_id,
        verdicts=verdicts.height,
        results=rows.height,
        passed=totals["passed"],
        failed=totals["failed"],
        pending=totals["pending"],
        pass_rate=totals["pass_rate"],
        variants=tuple(variant_pass_rates(rows).to_dicts()),
        flaky=tuple(repeats.filter(pl.col("flaky")).to_dicts()),
        judge_requests=requests,
        judge_cached=cached,
        judge_errors=tuple(errors),
    )


async def _judged(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    run_id: str,
    pending: pl.DataFrame,
    judge: Judge,
    judged_at: datetime,
) -> Judged:
    """Verdicts for the pending checks: the cache's, then the judge's (cached for next time)."""
    keyed = with_cache_keys(pending, judge.model)
    cached = cached_judgements(con, keyed["cache_key"].unique().to_list())
    if judge.client_config is None:
        judged = await judge_pending(keyed, judge.model, cached, None, judged_at)
    else:
        async with ConversationsClient(judge.client_config) as client:
            judged = await judge_pending(keyed, judge.model, cached, client, judged_at)
    store_judgements(con, data_dir, f"{run_id}.{judged_at:%Y%m%dT%H%M%S%f}", judged.new_cache_rows)
    return judged

"""`convo-etl grade RUN_ID`: grade a run's stored outputs again, with its own checks or a CSV's."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flows.cli.errors import BAD_INPUT, CliError
from flows.cli.gate import FailUnder, JudgeModel, Prices, check_gate_inputs, checked_prices, gate
from flows.cli.options import BaseUrl, Concurrency, DataDir, command_settings
from flows.cli.runs import open_runs
from flows.evals.grade import Judge, grade_run
from flows.evals.summary import grading_lines
from flows.progress import numbers_table
from flows.settings import DEFAULT_DATA_DIR
from load.evals_store import stored_row_checks
from load.read_server import serving_reads
from transform.check_cells import checks_from_cells, parse_checks_csv
from transform.checks import RowChecks
from transform.prompts import PromptSetInvalid


def _checks_csv(path: Path) -> dict[str, RowChecks]:
    try:
        return parse_checks_csv(path.read_bytes(), path.name)
    except OSError as exc:
        raise CliError(f"{path}: cannot read the file: {exc.strerror or exc}", BAD_INPUT) from None
    except PromptSetInvalid as exc:
        raise CliError("\n".join(exc.errors), BAD_INPUT) from None


def grade_command(
    run_id: Annotated[str, typer.Argument(help="The replay run to grade (see replay_runs).")],
    checks: Annotated[
        Path | None,
        typer.Option(help="CSV with id and __expected columns (default: the run's own checks)."),
    ] = None,
    judge_model: JudgeModel = None,
    prices: Prices = None,
    fail_under: FailUnder = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    base_url: BaseUrl = None,
    concurrency: Concurrency = 8,
) -> None:
    """Grade a replay run's stored outputs; only llm-rubric checks send requests (to the judge).

    A --checks CSV replaces the run's checks (matched by row id) for this and later gradings.
    """
    checks_by_row = _checks_csv(checks) if checks is not None else None
    price_table = checked_prices(prices)
    settings = command_settings(data_dir, base_url)
    con = open_runs(settings.data_dir, [run_id])
    reads = serving_reads(con, settings.data_dir)
    try:
        if checks_by_row is None:
            checks_by_row = checks_from_cells(stored_row_checks(con, run_id))
            if not checks_by_row:
                raise CliError(
                    f"run {run_id!r} has no checks stored: give --checks FILE.csv", BAD_INPUT
                )
        check_gate_inputs(checks_by_row, judge_model, fail_under, checks or f"run {run_id!r}")
        judge = None
        if judge_model is not None:
            judge = Judge(judge_model, settings.api.client_config(concurrency=concurrency))
        report = asyncio.run(
            grade_run(con, settings.data_dir, run_id, checks_by_row, judge, price_table)
        )
    finally:
        reads.close()
        con.close()
    Console(highlight=False).print(numbers_table(f"grade {run_id}", grading_lines(report)))
    gate(report, fail_under)

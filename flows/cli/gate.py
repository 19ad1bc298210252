"""The eval options `replay` and `grade` share, and the gate: a pass rate under --fail-under
exits 3 (GATE_FAILED), so a CI job can fail on it."""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.errors import BAD_INPUT, GATE_FAILED, CliError
from flows.evals.grade import GradeReport
from flows.evals.prices import read_prices
from flows.evals.summary import percent
from transform.checks import JUDGED_TYPES, RowChecks
from transform.prices import PricesInvalid, PriceTable

JudgeModel = Annotated[
    str | None,
    typer.Option(help="Model that judges llm-rubric checks (asked with store: false, cached)."),
]
Prices = Annotated[
    Path | None,
    typer.Option(help="Price CSV (model,input_per_million,output_per_million) for cost checks."),
]
FailUnder = Annotated[
    float | None,
    typer.Option(
        min=0.0, max=1.0, help="Exit 3 when the pass rate (0 to 1) is below this, for CI."
    ),
]


def check_gate_inputs(
    checks_by_row: Mapping[str, RowChecks],
    judge_model: str | None,
    fail_under: float | None,
    source: Path | str,
) -> None:
    """Before anything is sent: a gate needs checks, and llm-rubric checks need a judge."""
    if fail_under is None:
        return
    if not any(checks.checks for checks in checks_by_row.values()):
        raise CliError(f"--fail-under: {source} has no checks (__expected columns)", BAD_INPUT)
    judged = any(
        check.type in JUDGED_TYPES for checks in checks_by_row.values() for check in checks.checks
    )
    if judged and judge_model is None:
        raise CliError(
            f"--fail-under: {source} has llm-rubric checks; name a --judge-model", BAD_INPUT
        )


def checked_prices(path: Path | None) -> PriceTable | None:
    """The price table, or a CliError (bad input) naming what is wrong with the file."""
    try:
        return read_prices(path)
    except PricesInvalid as exc:
        raise CliError("\n".join(exc.errors), BAD_INPUT) from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read the file: {exc.strerror or exc}", BAD_INPUT) from None


def gate(report: GradeReport, fail_under: float | None) -> None:
    """Fail (exit 1) on judge errors; exit 3 when the pass rate is below `fail_under`."""
    if report.judge_errors:
        raise CliError("\n".join(report.judge_errors))
    if fail_under is None:
        return
    rate = report.pass_rate
    if rate is None or rate < fail_under:
        raise CliError(
            f"pass rate {percent(rate)} is below --fail-under {percent(fail_under)}",
            GATE_FAILED,
        )

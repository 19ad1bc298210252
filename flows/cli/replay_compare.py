"""`convo-etl replay-compare RUN_A RUN_B …`: runs aligned by (row, repeat, variant), the first
as the baseline: pass rates, every regression and fix, latency, tokens and estimated cost."""

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from flows.cli.errors import BAD_INPUT, CliError
from flows.cli.gate import Prices, checked_prices
from flows.cli.options import DataDir
from flows.cli.runs import read_runs
from flows.evals.compare import Comparison, load_comparison
from flows.evals.summary import percent
from flows.settings import DEFAULT_DATA_DIR
from load.replay_compare_html import render_compare_html
from load.replay_report import write_report_text
from load.replay_report_html import format_ms
from load.storage_errors import StorageError
from load.warehouse import WarehouseLocked

SHOWN_OUTPUT_CHARS = 60
RUN_COLUMNS = (
    "run",
    "results",
    "pass rate",
    "latency p50/p95",
    "TTFT p50/p95",
    "tokens in/out",
    "est. cost USD",
)


class Format(StrEnum):
    table = "table"
    json = "json"


def replay_compare_command(
    run_ids: Annotated[
        list[str], typer.Argument(help="Two or more replay runs; the first is the baseline.")
    ],
    prices: Prices = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="table for people, json for machines.")
    ] = Format.table,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML page here.")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Compare replay runs check by check (grade them first: `replay` does, or `grade`)."""
    if len(run_ids) < 2 or len(set(run_ids)) != len(run_ids):
        raise CliError("replay-compare needs two or more different run ids", BAD_INPUT)
    price_table = checked_prices(prices)
    con = read_runs(data_dir, run_ids)
    try:
        comparison = load_comparison(con, run_ids, price_table)
    except WarehouseLocked as exc:
        raise CliError(str(exc)) from None
    finally:
        con.close()
    if html is not None:
        page = render_compare_html(
            comparison.compared.baseline_run_id,
            comparison.compared.runs,
            comparison.compared.changes,
            comparison.variants,
            comparison.flaky,
        )
        try:
            write_report_text(html, page)
        except StorageError as exc:
            raise CliError(str(exc)) from None
    if output_format is Format.json:
        typer.echo(comparison_json(comparison))
    else:
        print_comparison(comparison)


def comparison_json(comparison: Comparison) -> str:
    """The comparison as one JSON document (NaN as null)."""
    compared = comparison.compared
    document = {
        "baseline_run_id": compared.baseline_run_id,
        "cost_is_estimate": compared.cost_is_estimate,
        "runs": _records(compared.runs.to_dicts()),
        "variants": _records(comparison.variants.to_dicts()),
        "regressions": _records(compared.regressions.to_dicts()),
        "fixes": _records(compared.fixes.to_dicts()),
        "flaky": _records(comparison.flaky.to_dicts()),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def _records(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in line.items()}
        for line in lines
    ]


def _short(text: str | None) -> str:
    flat = (text or "").replace("\n", " ")
    return flat if len(flat) <= SHOWN_OUTPUT_CHARS else flat[: SHOWN_OUTPUT_CHARS - 1] + "…"


def print_comparison(comparison: Comparison) -> None:
    """Runs, variants, regressions and fixes, and flaky rows as terminal tables."""
    console = Console(highlight=False, width=200)
    runs = Table(title="runs (the first is the baseline)", title_justify="left")
    for column in RUN_COLUMNS:
        runs.add_column(column)
    for run in comparison.compared.runs.iter_rows(named=True):
        cost = run["estimated_cost_usd"]
        runs.add_row(
            run["run_id"],
            str(run["results"]),
            percent(run["pass_rate"]),
            f"{format_ms(run['latency_p50_ms'])} / {format_ms(run['latency_p95_ms'])}",
            f"{format_ms(run['ttft_p50_ms'])} / {format_ms(run['ttft_p95_ms'])}",
            f"{run['prompt_tokens'] or 0} / {run['completion_tokens'] or 0}",
            "-" if cost is None or run["unpriced_results"] == run["results"] else f"≈ {cost:.6f}",
        )
    console.print(runs)
    if comparison.variants.filter(comparison.variants["variant"] != "").height:
        variants = Table(title="pass rate by variant", title_justify="left")
        for column in ("run", "variant", "pass rate", "passed / results"):
            variants.add_column(column)
        for line in comparison.variants.iter_rows(named=True):
            variants.add_row(
                line["run_id"],
                line["variant"],
                percent(line["pass_rate"]),
                f"{line['passed']} / {line['results']}",
            )
        console.print(variants)
    changes = Table(title="regressions and fixes", title_justify="left")
    for column in ("change", "run", "row", "check", "baseline output", "output"):
        changes.add_column(column)
    for change in comparison.compared.changes.iter_rows(named=True):
        row = change["row_id"] + (f" #{change['repeat_index']}" if change["repeat_index"] else "")
        row += f" ({change['variant']})" if change["variant"] else ""
        changes.add_row(
            change["change"],
            change["run_id"],
            row,
            f"{change['type']}: {change['value']}",
            _short(change["baseline_output"]),
            _short(change["output"]),
        )
    console.print(changes if changes.row_count else "no regressions or fixes")
    for line in comparison.flaky.iter_rows(named=True):
        variant = f" ({line['variant']})" if line["variant"] else ""
        console.print(
            f"flaky: {line['run_id']} {line['row_id']}{variant} passed "
            f"{line['passed']} of {line['repeats']} repeats"
        )
    console.print("costs are estimates from the price table", style="dim")

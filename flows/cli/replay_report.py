"""`convo-etl replay-report RUN_ID`: write a replay run's self-contained HTML report."""

from pathlib import Path
from typing import Annotated

import duckdb
import typer

from flows.cli.errors import CliError
from flows.cli.options import DataDir
from flows.settings import DEFAULT_DATA_DIR
from load.replay_report import (
    TABLE_ROWS_LIMIT,
    ReplayRunNotFound,
    WarehouseMissing,
    write_replay_report,
)
from load.storage_errors import StorageError
from load.warehouse import WarehouseLocked


def replay_report_command(
    run_id: Annotated[str, typer.Argument(help="The replay run to report on (see replay_runs).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the HTML (default <data-dir>/reports/replay-<run_id>.html).",
        ),
    ] = None,
    max_rows: Annotated[
        int,
        typer.Option("--max-rows", min=1, help="Results shown in the table (charts use all)."),
    ] = TABLE_ROWS_LIMIT,
) -> None:
    """Write the HTML report of one replay run (header, charts, prompts beside outputs)."""
    try:
        path = write_replay_report(data_dir, run_id, output, max_rows)
    except (ReplayRunNotFound, WarehouseMissing, WarehouseLocked, StorageError) as exc:
        raise CliError(str(exc)) from None
    except duckdb.Error as exc:
        raise CliError(f"cannot read the warehouse: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise CliError(f"cannot write the report: {exc}") from None
    if path is not None:
        typer.echo(str(path))

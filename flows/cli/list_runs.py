"""`convo-etl runs`: the latest export and replay runs and how each ended."""

from typing import Annotated

import typer
from rich.console import Console

from flows.cli.errors import CliError
from flows.cli.options import DataDir
from flows.export.query import QueryFailed, QueryFormat, print_result, query_warehouse
from flows.settings import DEFAULT_DATA_DIR
from load.warehouse import sql_text


def runs_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 20,
    output: Annotated[
        QueryFormat, typer.Option("--format", help="table, csv or json.")
    ] = QueryFormat.TABLE,
) -> None:
    """List the latest runs: running, completed, failed or interrupted (killed, Ctrl-C)."""
    try:
        columns, rows = query_warehouse(data_dir, sql_text("runs/recent.sql"), {"limit": limit})
    except QueryFailed as error:
        raise CliError(str(error)) from None
    print_result(columns, rows, output, Console())

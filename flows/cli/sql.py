"""`convo-etl sql QUERY`: one read-only query on the warehouse, printed as a table, CSV or JSON."""

from typing import Annotated

import typer
from rich.console import Console

from flows.cli.errors import BAD_INPUT, CliError
from flows.cli.options import StoreDir
from flows.export.query import QueryFailed, QueryFormat, run_query
from flows.settings import DEFAULT_DATA_DIR


def sql_command(
    query: Annotated[str, typer.Argument(help="The SQL to run (read-only).")],
    data_dir: StoreDir = str(DEFAULT_DATA_DIR),
    output: Annotated[
        QueryFormat,
        typer.Option("--format", help="table (long values cropped), csv or json."),
    ] = QueryFormat.TABLE,
) -> None:
    """Run one read-only SQL query against the warehouse (or the lake) and print the result."""
    if not query.strip():
        raise CliError("the query is empty: give one SQL statement, e.g. 'select 1'", BAD_INPUT)
    try:
        run_query(data_dir, query, output, Console())
    except QueryFailed as error:
        raise CliError(str(error)) from None

"""`convo-etl sql`: run one query on the warehouse's last committed state and print the result."""

import csv
import sys
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from load.lake.location import is_lake_url
from load.lake.reading import lake_connection
from load.lake.reasons import LakeError
from load.read_client import WarehouseReader
from load.warehouse import WarehouseLocked, sql_text, warehouse_path
from transform.wording import counted

_TABLE_CELL_CHARS = 120


class QueryFormat(StrEnum):
    """How `convo-etl sql` prints a result."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class QueryFailed(Exception):
    """The warehouse could not be opened or the query failed; the message is one line."""


def _first_line(error: BaseException) -> str:
    """The first line of an error's text (DuckDB appends multi-line context)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def open_read_only(data_dir: Path | str) -> WarehouseReader | duckdb.DuckDBPyConnection:
    """The warehouse under ``data_dir`` for reading, even while a writer holds it (or the lake
    at a lake URL: its last committed state); or QueryFailed saying why not."""
    if is_lake_url(str(data_dir)):
        try:
            return lake_connection(str(data_dir))
        except LakeError as error:
            raise QueryFailed(
                f"{error} (run `convo-etl export --data-dir {data_dir}` first)"
            ) from None
    path = warehouse_path(data_dir)
    try:
        return WarehouseReader(data_dir)
    except FileNotFoundError:
        raise QueryFailed(
            f"no warehouse at {path}: run `convo-etl export` or `convo-etl demo` first"
        ) from None
    except (duckdb.Error, WarehouseLocked) as error:
        raise _cannot_open(path, error) from error


def _cannot_open(path: Path, error: BaseException) -> QueryFailed:
    return QueryFailed(f"cannot open {path} (is an export writing to it?): {_first_line(error)}")


def query_warehouse(
    data_dir: Path | str, query: str, params: dict[str, Any] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``query``, from the warehouse's (or lake's) last committed
    state."""
    return _read(data_dir, query, params or {}, "query failed")


def read_view(
    data_dir: Path | str, view: str, limit: int
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and the first ``limit`` rows of a table or view, without writing SQL text."""
    return _read(
        data_dir,
        sql_text("export/view_rows.sql"),
        {"view": view, "limit": limit},
        f"cannot read {view}",
    )


def _read(
    data_dir: Path, query: str, params: dict[str, Any], failed: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    with open_read_only(data_dir) as reader:
        try:
            cursor = reader.execute(query, params or None)
            columns = [d[0] for d in cursor.description] if cursor.description else []
            rows = cursor.fetchall() if cursor.description else []
        except WarehouseLocked as error:
            raise _cannot_open(warehouse_path(data_dir), error) from None
        except duckdb.Error as error:
            raise QueryFailed(f"{failed}: {_first_line(error)}") from error
    return columns, rows


def _json_default(value: Any) -> Any:
    """JSON for the DuckDB values orjson does not know (decimals, intervals, blobs...)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _text(value: Any) -> str:
    """A value as CSV or table text: NULL is empty, timestamps are ISO-8601."""
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _cropped(text: str) -> str:
    """A table cell short enough to read; csv and json keep the whole value."""
    if len(text) <= _TABLE_CELL_CHARS:
        return text
    return text[: _TABLE_CELL_CHARS - 1] + "…"


def print_result(
    columns: list[str], rows: list[tuple[Any, ...]], output: QueryFormat, console: Console
) -> None:
    """Print a result as a table, CSV or a JSON array of objects on stdout."""
    if output is QueryFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(v) for v in row] for row in rows)
    elif output is QueryFormat.JSON:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        sys.stdout.write(
            orjson.dumps(
                records, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
            ).decode()
            + "\n"
        )
    else:
        table = Table()
        for name in columns:
            table.add_column(Text(name))
        for row in rows:
            table.add_row(*(Text(_cropped(_text(v))) for v in row))
        console.print(table)
        console.print(counted(len(rows), "row"), style="dim", highlight=False)
    sys.stdout.flush()


def run_query(data_dir: Path | str, query: str, output: QueryFormat, console: Console) -> None:
    """Run ``query`` on the warehouse under ``data_dir`` and print its result."""
    columns, rows = query_warehouse(data_dir, query)
    print_result(columns, rows, output, console)

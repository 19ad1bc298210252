"""Open the warehouse for commands that work on stored replay runs, naming what is missing."""

from collections.abc import Sequence
from pathlib import Path

import duckdb

from flows.cli.errors import BAD_INPUT, CliError
from flows.settings import WRITER_DUCKDB_LIMITS
from load.evals_store import known_runs
from load.read_client import ReadConnection, WarehouseReader
from load.warehouse import WarehouseLocked, open_warehouse, warehouse_path


def open_runs(data_dir: Path, run_ids: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """The warehouse (writable), once every run id is known; else a CliError (bad input)."""
    _check_exists(data_dir)
    try:
        con = open_warehouse(data_dir, limits=WRITER_DUCKDB_LIMITS)
    except WarehouseLocked as exc:
        raise CliError(str(exc)) from None
    _check_known(con, data_dir, run_ids)
    return con


def read_runs(data_dir: Path, run_ids: Sequence[str]) -> WarehouseReader:
    """The warehouse for reading (even while a writer holds it), once every run id is known."""
    _check_exists(data_dir)
    reader = WarehouseReader(data_dir)
    try:
        _check_known(reader, data_dir, run_ids)
    except WarehouseLocked as exc:
        reader.close()
        raise CliError(str(exc)) from None
    return reader


def _check_exists(data_dir: Path) -> None:
    path = warehouse_path(data_dir)
    if not path.exists():
        raise CliError(f"no warehouse at {path}: run `convo-etl replay` first", BAD_INPUT)


def _check_known(con: ReadConnection, data_dir: Path, run_ids: Sequence[str]) -> None:
    """Close ``con`` and raise a CliError (bad input) naming every run id it does not hold."""
    missing = [run_id for run_id in run_ids if run_id not in known_runs(con, run_ids)]
    if missing:
        con.close()
        path = warehouse_path(data_dir)
        raise CliError(
            "\n".join(f"no replay run with id {run_id!r} in {path}" for run_id in missing),
            BAD_INPUT,
        )

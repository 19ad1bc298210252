"""Open the warehouse for commands that work on stored replay runs, naming what is missing."""

from collections.abc import Sequence
from pathlib import Path

import duckdb

from flows.cli.errors import BAD_INPUT, CliError
from flows.settings import WRITER_DUCKDB_LIMITS
from load.evals_store import known_runs
from load.warehouse import WarehouseLocked, open_warehouse, warehouse_path


def open_runs(data_dir: Path, run_ids: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """The warehouse (writable), once every run id is known; else a CliError (bad input)."""
    path = warehouse_path(data_dir)
    if not path.exists():
        raise CliError(f"no warehouse at {path}: run `convo-etl replay` first", BAD_INPUT)
    try:
        con = open_warehouse(data_dir, limits=WRITER_DUCKDB_LIMITS)
    except WarehouseLocked as exc:
        raise CliError(str(exc)) from None
    missing = [run_id for run_id in run_ids if run_id not in known_runs(con, run_ids)]
    if missing:
        con.close()
        raise CliError(
            "\n".join(f"no replay run with id {run_id!r} in {path}" for run_id in missing),
            BAD_INPUT,
        )
    return con

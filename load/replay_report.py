"""Write the HTML report of one replay run: query the warehouse, build the model, render, save.

The I/O lives here and only here; the model (``replay_report_model``), the charts
(``replay_report_svg``) and the page (``replay_report_html``) are pure.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from load.read_client import ReadConnection, WarehouseReader
from load.replay_merge import run_summary
from load.replay_report_html import render_report_html
from load.replay_report_model import ReportModel, build_report_model
from load.storage_errors import StorageError, storage_error
from load.warehouse import sql_text, warehouse_exists, warehouse_path

TABLE_ROWS_LIMIT = 1000


class ReplayRunNotFound(LookupError):
    """The warehouse holds no replay run with the requested id."""

    def __init__(self, run_id: str, warehouse: Path) -> None:
        super().__init__(f"no replay run with id {run_id!r} in {warehouse}")
        self.run_id = run_id


class WarehouseMissing(FileNotFoundError):
    """The data dir has no warehouse yet, so it holds no replay run to report on."""

    def __init__(self, warehouse: Path) -> None:
        super().__init__(f"no warehouse at {warehouse}: run `convo-etl replay` first")


def default_report_path(data_dir: Path, run_id: str) -> Path:
    """Where a run's report goes unless told otherwise: <data-dir>/reports/replay-<run_id>.html."""
    return data_dir / "reports" / f"replay-{run_id}.html"


def _query(
    connection: ReadConnection, sql_name: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    cursor = connection.execute(sql_text(sql_name), params)
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def read_report_model(
    connection: ReadConnection,
    run_id: str,
    warehouse: Path,
    table_rows_limit: int = TABLE_ROWS_LIMIT,
) -> ReportModel:
    """Run the report queries for one run and build its model; an unknown id raises."""
    params = {"run_id": run_id}
    runs = _query(connection, "replay/report_run.sql", params)
    if not runs:
        raise ReplayRunNotFound(run_id, warehouse)
    return build_report_model(
        runs[0],
        run_summary(connection, run_id),
        _query(connection, "replay/report_metrics.sql", params),
        _query(connection, "replay/report_rows.sql", {**params, "limit": table_rows_limit}),
        _query(connection, "replay/report_events.sql", params),
        _query(connection, "replay/report_variants.sql", params),
    )


def write_report_text(path: Path, text: str) -> Path | None:
    """Write a page to ``path``; return the file written, or None when written through.

    A symlink or a special file (``/dev/stdout``, a FIFO) is written through, never replaced;
    anything else gets a temp file in the same directory, renamed over it: never a half page.
    The file's mode is 0666 less the umask, as any file a user's command creates.
    """
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            if path.is_dir():
                raise StorageError(path, "it is a directory")
            with open(path, "w", encoding="utf-8") as sink:
                sink.write(text)
            return None
        return _write_atomically(path, text)
    except OSError as error:
        raise storage_error(path, error) from error


def _write_atomically(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as sink:
            sink.write(text)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def write_replay_report(
    data_dir: Path,
    run_id: str,
    output: Path | None = None,
    table_rows_limit: int = TABLE_ROWS_LIMIT,
) -> Path | None:
    """Write the report of run_id from the data dir's warehouse; the file's path, or None when
    written through a symlink or special file (see ``write_report_text``)."""
    warehouse = warehouse_path(data_dir)
    if not warehouse_exists(data_dir):
        raise WarehouseMissing(warehouse)
    with WarehouseReader(data_dir) as connection:
        model = read_report_model(connection, run_id, warehouse, table_rows_limit)
    return write_report_text(
        output or default_report_path(data_dir, run_id), render_report_html(model)
    )

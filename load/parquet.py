"""Write Arrow tables as Parquet parts atomically, so a killed run never leaves a torn file.

Purging a deleted conversation rewrites the parts that hold it the same way.

Layout: ``<data_dir>/parquet/<table_name>/<part_name>.parquet``. A part name carries the run id
and batch number, so re-running a batch overwrites its own part instead of adding a copy. The
export's parts hold the workspace as their first column (one glob reads every workspace), and
their run ids never repeat, so two workspaces never write the same part.
"""

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from load.storage_errors import storage_error
from transform.workspaces import WORKSPACE, with_workspace

ROW_GROUP_ROWS = 64_000
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def part_name(run_id: str, batch_number: int) -> str:
    """The part name of one batch of one run, e.g. ``<run_id>-b00003``."""
    return f"{run_id}-b{batch_number:05d}"


def table_dir(data_dir: str | os.PathLike[str], table_name: str) -> Path:
    """The directory holding a table's Parquet parts."""
    return Path(data_dir) / "parquet" / _checked_name(table_name, "table name")


def write_part(
    table: pa.Table, data_dir: str | os.PathLike[str], table_name: str, part_name: str
) -> Path:
    """Write ``table`` as one zstd Parquet part (temp file, fsync, rename) and return its path."""
    directory = table_dir(data_dir, table_name)
    path = directory / f"{_checked_name(part_name, 'part name')}.parquet"
    try:
        return _write_part(table, directory, path)
    except OSError as error:
        raise storage_error(path, error) from error


def part_paths(data_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """Every finished part of a table (never a temp file of a writer still at work), sorted."""
    return sorted(table_dir(data_dir, table_name).glob("*.parquet"))


def rewrite_part_without(path: Path, workspace: str, key: str, ids: pa.Array) -> int:
    """Drop the rows of ``workspace`` whose ``key`` column is one of ``ids`` from a part; return
    how many went.

    The part is replaced atomically (temp file, fsync, rename), keeping its own schema; a part
    left with no row is removed.
    """
    try:
        table = pq.read_table(path)
        dropped = pc.and_(
            pc.equal(table[WORKSPACE], workspace), pc.is_in(table[key], value_set=ids)
        )
        kept = table.filter(pc.invert(dropped))
        if not kept.num_rows:
            path.unlink()
        elif kept.num_rows < table.num_rows:
            _write_part(kept, path.parent, path)
    except OSError as error:
        raise storage_error(path, error) from error
    return table.num_rows - kept.num_rows


def upgrade_parts(
    data_dir: str | os.PathLike[str], table_name: str, schema: pa.Schema, workspace: str
) -> None:
    """Give every part of a table written before the workspace column that column, first,
    holding ``workspace``, and the columns of ``schema`` (those since derived from raw go, those
    added since are null); each part is rewritten atomically, one at a time."""
    for path in part_paths(data_dir, table_name):
        try:
            if WORKSPACE not in pq.read_schema(path).names:
                table = _in_schema(pq.read_table(path), schema)
                _write_part(with_workspace(table, workspace), path.parent, path)
        except OSError as error:
            raise storage_error(path, error) from error


def _in_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table's columns that ``schema`` names, in its order; a column it lacks is null."""
    columns = [
        table[field.name] if field.name in table.column_names else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _write_part(table: pa.Table, directory: Path, path: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # The temp name ends in .tmp, so a `*.parquet` glob never reads a half-written part.
    temp = directory / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(temp, "wb") as sink:
            pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    for stale in directory.glob(f".{path.name}.*.tmp"):
        # Left by a writer of this part that was killed before its rename.
        stale.unlink(missing_ok=True)
    return path


def _checked_name(name: str, what: str) -> str:
    """The name itself, if it is one path component of letters, digits, '.', '_' or '-'."""
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"invalid Parquet {what} {name!r}: use letters, digits, '.', '_', '-'")
    return name

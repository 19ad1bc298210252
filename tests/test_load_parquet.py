"""Parquet parts: written atomically, overwritten by a re-run, readable as one table by DuckDB."""

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from load.parquet import part_name, write_part
from transform.entries import flatten_entries
from transform.schemas import ENTRIES


def _entries(conversation_id: str, count: int) -> pa.Table:
    entries = [
        {"id": f"msg_{i}", "type": "message.input", "role": "user", "content": f"hello {i}"}
        for i in range(count)
    ]
    return flatten_entries(conversation_id, entries, "run-1")


def test_parts_are_zstd_and_read_back_with_read_parquet(data_dir: Path) -> None:
    first = write_part(_entries("conv_a", 3), data_dir, "entries", part_name("run-1", 1))
    write_part(_entries("conv_b", 2), data_dir, "entries", part_name("run-1", 2))
    assert first == data_dir / "parquet" / "entries" / "run-1-b00001.parquet"
    assert pq.ParquetFile(first).metadata.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_schema(first).equals(ENTRIES)
    glob = str(data_dir / "parquet" / "entries" / "**" / "*.parquet")
    count = duckdb.connect().execute(
        f"SELECT count(*), count(DISTINCT conversation_id) FROM read_parquet('{glob}')"
    )
    assert count.fetchone() == (5, 2)


def test_rewriting_a_batch_replaces_its_part(data_dir: Path) -> None:
    write_part(_entries("conv_a", 3), data_dir, "entries", part_name("run-1", 1))
    path = write_part(_entries("conv_a", 2), data_dir, "entries", part_name("run-1", 1))
    assert [p.name for p in path.parent.iterdir()] == ["run-1-b00001.parquet"]
    assert pq.read_table(path).num_rows == 2


def test_row_groups_are_bounded(data_dir: Path) -> None:
    table = pa.table({"n": pa.array(range(150_000), pa.int64())})
    path = write_part(table, data_dir, "numbers", "part")
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 3
    assert max(metadata.row_group(i).num_rows for i in range(3)) == 64_000


def test_a_failed_write_keeps_the_old_part_and_leaves_no_temp_file(data_dir: Path) -> None:
    path = write_part(_entries("conv_a", 3), data_dir, "entries", "part")
    with pytest.raises(AttributeError):
        write_part("not a table", data_dir, "entries", "part")  # type: ignore[arg-type]
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]
    assert pq.read_table(path).num_rows == 3


def test_a_temp_file_left_by_a_killed_writer_is_removed_by_the_rerun(data_dir: Path) -> None:
    directory = data_dir / "parquet" / "entries"
    directory.mkdir(parents=True)
    stale = directory / ".part.parquet.99999.tmp"
    stale.write_bytes(b"half a parquet file")
    write_part(_entries("conv_a", 1), data_dir, "entries", "part")
    assert sorted(p.name for p in directory.iterdir()) == ["part.parquet"]


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden"])
def test_names_that_are_not_one_path_component_are_rejected(data_dir: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid Parquet part name"):
        write_part(_entries("conv_a", 1), data_dir, "entries", bad)


_WRITER = """
import sys
import pyarrow as pa
from load.parquet import write_part
table = pa.table({"text": pa.array(["x" * 200] * 300_000), "n": pa.array(range(300_000))})
batch = 0
while True:
    write_part(table, sys.argv[1], "big", f"run-1-b{batch % 3:05d}")
    print(batch, flush=True)
    batch += 1
"""


def test_a_writer_killed_mid_write_leaves_only_whole_parts(data_dir: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(data_dir)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        writer.stdout.readline()
        time.sleep(0.3)
    finally:
        writer.kill()
        writer.wait()
    parts = sorted((data_dir / "parquet" / "big").glob("*.parquet"))
    assert parts
    glob = str(data_dir / "parquet" / "big" / "*.parquet")
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()
    assert rows == (300_000 * len(parts),)

"""Bad disks under load/: one StorageError with the path and the OS's reason, no rollback error.

A data dir that is a file, or under a file, or on a read-only or full file system (a small tmpfs
mounted for the test: root only, skipped with the reason otherwise).
"""

import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from load.parquet import write_part
from load.replay_report import write_report_text
from load.storage_errors import StorageError
from load.warehouse import merge_export_batch, open_warehouse
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks

Mount = Callable[..., Path]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """Mount small tmpfs file systems under tmp_path (`tmpfs("2m", read_only=True)`)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def incompressible(megabytes: int) -> pa.Table:
    return pa.table({"blob": [os.urandom(1 << 20) for _ in range(megabytes)]})


def assert_one_line(error: pytest.ExceptionInfo[StorageError], path: Path, reason: str) -> None:
    message = str(error.value)
    assert message.startswith(f"cannot write {path}"), message
    assert message.endswith(f": {reason}"), message
    assert "\n" not in message
    assert "rollback" not in message


def test_a_data_dir_that_is_a_file(tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.write_text("a file")
    with pytest.raises(StorageError) as raised:
        open_warehouse(data_dir)
    assert_one_line(raised, data_dir, "File exists")
    with pytest.raises(StorageError) as raised:
        write_part(incompressible(1), data_dir, "entries", "p1")
    assert_one_line(raised, data_dir / "parquet" / "entries" / "p1.parquet", "Not a directory")


def test_a_data_dir_under_a_file(tmp_path: Path):
    data_dir = tmp_path / "file" / "data"
    data_dir.parent.write_text("a file")
    with pytest.raises(StorageError) as raised:
        open_warehouse(data_dir)
    assert_one_line(raised, data_dir, "Not a directory")
    with pytest.raises(StorageError) as raised:
        write_report_text(data_dir / "report.html", "<p>page</p>")
    assert_one_line(raised, data_dir / "report.html", "Not a directory")


def test_a_read_only_file_system(tmpfs: Mount):
    data_dir = tmpfs("1m", read_only=True) / "data"
    with pytest.raises(StorageError) as raised:
        open_warehouse(data_dir)
    assert_one_line(raised, data_dir, "Read-only file system")
    with pytest.raises(StorageError) as raised:
        write_report_text(data_dir.parent / "report.html", "<p>page</p>")
    assert_one_line(raised, data_dir.parent / "report.html", "Read-only file system")


def test_a_full_disk_names_no_space_left(tmpfs: Mount):
    data_dir = tmpfs("2m") / "data"
    with pytest.raises(StorageError) as raised:
        write_part(incompressible(3), data_dir, "entries", "p1")
    assert_one_line(
        raised, data_dir / "parquet" / "entries" / "p1.parquet", "No space left on device"
    )
    assert list((data_dir / "parquet" / "entries").iterdir()) == []  # no temp file left
    with pytest.raises(StorageError) as raised:
        write_report_text(data_dir / "report.html", "x" * 3_000_000)
    assert_one_line(raised, data_dir / "report.html", "No space left on device")


def test_a_warehouse_on_a_full_disk_is_refused_with_the_reason(tmpfs: Mount):
    data_dir = tmpfs("1m") / "data"
    data_dir.mkdir()
    (data_dir / "filler").write_bytes(b"\0" * (1024 * 1024 - 8192))
    with pytest.raises(StorageError) as raised:
        open_warehouse(data_dir)
    assert_one_line(raised, data_dir / "warehouse.duckdb", "No space left on device")


def test_a_merge_on_a_full_disk_raises_the_first_error_not_a_rollback_error(tmpfs: Mount):
    data_dir = tmpfs("3m") / "data"
    con = open_warehouse(data_dir)
    free = os.statvfs(data_dir).f_bavail * os.statvfs(data_dir).f_frsize
    (data_dir / "filler").write_bytes(b"\0" * (free - 256 * 1024))
    history = [{"type": "message.input", "id": f"e{i}", "content": os.urandom(16 * 1024).hex()}
               for i in range(64)]  # fmt: skip
    conversation = {"id": "c1", "model": "m", "created_at": datetime.now(UTC).isoformat()}
    tables = (
        flatten_conversations([conversation], "r"),
        flatten_histories([("c1", history)], "r"),
        flatten_histories([("c1", [])], "r"),
        flatten_histories_chunks([("c1", history)], "r"),
    )
    try:
        with pytest.raises(Exception) as raised:
            merge_export_batch(con, *tables)
        assert "No space left on device" in str(raised.value)
        assert "cannot rollback" not in str(raised.value)
    finally:
        con.close()

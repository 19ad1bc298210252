"""The read server on its own: a writer in this process serves, a reader in a child process asks.

Only reads pass (DuckDB's parser decides), each refusal is one line, answers keep their types,
a data dir too deep for a socket's path still serves, and a disk that holds no socket lets the
writer go on with a warning.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest

from load.read_server import serving_reads
from load.read_socket import server_answers
from load.warehouse import open_warehouse

REPO = Path(__file__).resolve().parent.parent

_ASK = """
import sys, orjson, duckdb
from load.read_client import WarehouseReader
answers = []
with WarehouseReader(sys.argv[1]) as reader:
    for query in orjson.loads(sys.argv[2]):
        try:
            rows = reader.execute(query).fetchall()
            answers.append(["rows", [list(map(str, row)) for row in rows]])
        except duckdb.Error as error:
            answers.append([type(error).__name__, str(error)])
print(orjson.dumps(answers).decode())
"""


def ask(data_dir: Path, *queries: str) -> list[list[object]]:
    """Each query's rows (as text) or its error, asked by a reader in another process."""
    done = subprocess.run(
        [sys.executable, "-c", _ASK, str(data_dir), orjson.dumps(queries).decode()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return orjson.loads(done.stdout)


@pytest.fixture
def writer(data_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse's write connection, with one committed row and one uncommitted."""
    con = open_warehouse(data_dir)
    con.execute(
        "INSERT INTO conversations"
        " (workspace, id, updated_at, raw, first_export_run, last_export_run)"
        " VALUES ('default', 'conv_a', TIMESTAMPTZ '2026-11-28 10:00:00+00', '{}', 'r', 'r')"
    )
    con.begin()
    con.execute(
        "INSERT INTO conversations"
        " (workspace, id, updated_at, raw, first_export_run, last_export_run)"
        " VALUES ('default', 'conv_b', now(), '{}', 'r', 'r')"
    )
    yield con
    con.rollback()
    con.close()


def test_only_reads_pass_and_a_refusal_is_one_line(
    data_dir: Path, writer: duckdb.DuckDBPyConnection
) -> None:
    with serving_reads(writer, data_dir):
        answers = ask(
            data_dir,
            "SELECT id, updated_at FROM conversations",
            "DELETE FROM conversations",
            "COPY conversations TO 'out.csv'",
            "ATTACH ':memory:' AS other",
            "SET threads = 8",
            "PRAGMA version",
            "SELECT 1; CREATE TABLE t (i INT)",
            "SELECT * FROM no_such_table",
        )
    assert answers[0] == ["rows", [["conv_a", "2026-11-28 10:00:00+00:00"]]]
    for (kind, message), refused in zip(
        answers[1:7], ["DELETE", "COPY", "ATTACH", "SET", "PRAGMA", "CREATE"], strict=True
    ):
        assert kind == "QueryRefused"
        assert "\n" not in message and message.endswith(f"refused: {refused}")
    kind, message = answers[7]
    assert kind == "RemoteQueryFailed" and "no_such_table" in message and "\n" not in message
    assert not (data_dir / "out.csv").exists()
    assert writer.execute("SELECT count(*) FROM conversations").fetchone() == (2,)


def test_a_data_dir_too_deep_for_a_socket_path_still_serves(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "data"
    con = open_warehouse(deep)
    try:
        with serving_reads(con, deep):
            assert server_answers(deep)
            assert ask(deep, "SELECT 42") == [["rows", [["42"]]]]
    finally:
        con.close()


def test_a_disk_without_sockets_warns_and_the_writer_goes_on(
    data_dir: Path, writer: duckdb.DuckDBPyConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / ".warehouse.sock").mkdir()
    (data_dir / ".warehouse.sock" / "keep").touch()
    with serving_reads(writer, data_dir):
        assert not server_answers(data_dir)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("cannot serve reads on") and "readers wait" in line

"""The lake module against a real S3 server on loopback (moto's): merges, workspaces, state."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import orjson
import pytest
from lake_support import (
    export_batch,
    require_lake_extra,
    s3_options,
    synthetic_bodies,
)

pytest_plugins = ("lake_fixtures",)
TESTS = Path(__file__).parent


@pytest.fixture
def lake(lake_url: str, endpoint: str):
    from load.lake.tables import open_lake

    return open_lake(lake_url, s3_options(endpoint))


def _rows(lake, name: str, sql: str = "SELECT count(*) FROM t") -> list[tuple]:
    """Run ``sql`` over the latest committed version of a table, with DuckDB."""
    con = duckdb.connect()
    con.register("t", lake.table(name).to_pyarrow_table())
    return con.execute(sql).fetchall()


def test_upsert_then_read_back_with_duckdb(lake) -> None:
    from load.lake.tables import read_updated_at, upsert_batch

    tables = export_batch(synthetic_bodies(0, 0, 20, 20), "run-1")
    upsert_batch(lake, "ws-a", tables)
    for name, table in tables.items():
        assert _rows(lake, name) == [(table.num_rows,)]
    state = read_updated_at(lake, "ws-a")
    assert state == dict(
        zip(
            tables["conversations"]["id"].to_pylist(),
            tables["conversations"]["updated_at"].to_pylist(),
            strict=True,
        )
    )
    assert read_updated_at(lake, "ws-b") == {}


def test_same_batch_twice_leaves_the_same_rows(lake) -> None:
    from load.lake.tables import upsert_batch

    tables = export_batch(synthetic_bodies(0, 0, 10, 10), "run-1")
    upsert_batch(lake, "ws-a", tables)
    upsert_batch(lake, "ws-a", tables)
    for name, table in tables.items():
        assert _rows(lake, name) == [(table.num_rows,)]


def test_refetched_conversation_replaces_its_entries_and_keeps_first_run(lake) -> None:
    from load.lake.tables import read_updated_at, upsert_batch

    fetched = synthetic_bodies(0, 0, 5, 5)
    upsert_batch(lake, "ws-a", export_batch(fetched, "run-1"))
    header, history, _ = fetched[0]
    entries = orjson.loads(history)["entries"][:1]
    newer = header | {"updated_at": "2030-01-01T00:00:00Z"}
    shrunk = (newer, orjson.dumps({"entries": entries}), orjson.dumps({"messages": []}))
    upsert_batch(lake, "ws-a", export_batch([shrunk], "run-2"))

    cid = header["id"]
    counted = f"SELECT count(*) FROM t WHERE conversation_id = '{cid}'"
    assert _rows(lake, "entries", counted) == [(1,)]
    assert _rows(lake, "messages", counted) == [(0,)]
    runs = "SELECT first_export_run, last_export_run FROM t WHERE id = $$" + cid + "$$"
    assert _rows(lake, "conversations", runs) == [("run-1", "run-2")]
    assert str(read_updated_at(lake, "ws-a")[cid]) == "2030-01-01 00:00:00+00:00"
    others = export_batch(fetched[1:], "run-1")["entries"].num_rows
    assert _rows(lake, "entries") == [(others + 1,)]


def test_workspaces_keep_their_own_rows_of_the_same_ids(lake) -> None:
    from load.lake.tables import read_updated_at, upsert_batch

    tables = export_batch(synthetic_bodies(0, 0, 5, 5), "run-1")
    upsert_batch(lake, "ws-a", tables)
    upsert_batch(lake, "ws-b", export_batch(synthetic_bodies(0, 0, 3, 5), "run-1"))
    per_workspace = "SELECT workspace, count(*) FROM t GROUP BY ALL ORDER BY 1"
    assert _rows(lake, "conversations", per_workspace) == [("ws-a", 5), ("ws-b", 3)]
    assert len(read_updated_at(lake, "ws-a")) == 5
    assert len(read_updated_at(lake, "ws-b")) == 3


def test_two_processes_writing_other_workspaces_both_commit(lake, endpoint: str) -> None:
    """Two writers at once into the same tables: each one's rows are all there after."""
    writer = textwrap.dedent(
        """
        import sys
        from lake_support import export_batch, s3_options, synthetic_bodies
        from load.lake.tables import Lake, upsert_batch
        lake = Lake(sys.argv[1], s3_options(sys.argv[2]))
        for first in range(0, 12, 4):
            upsert_batch(lake, sys.argv[3], export_batch(synthetic_bodies(0, first, 4, 12), "r"))
        """
    )
    env = {"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"}
    env |= {"AWS_ACCESS_KEY_ID": "lake-test", "AWS_SECRET_ACCESS_KEY": "lake-test"}
    env |= {"AWS_REGION": "us-east-1"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", writer, lake.url, endpoint, workspace],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for workspace in ("ws-a", "ws-b")
    ]
    for process in writers:
        _, errors = process.communicate(timeout=240)
        assert process.returncode == 0, errors[-2000:]
    per_workspace = "SELECT workspace, count(*) FROM t GROUP BY ALL ORDER BY 1"
    assert _rows(lake, "conversations", per_workspace) == [("ws-a", 12), ("ws-b", 12)]
    entries = export_batch(synthetic_bodies(0, 0, 12, 12), "r")["entries"].num_rows
    assert _rows(lake, "entries", per_workspace) == [("ws-a", entries), ("ws-b", entries)]


def test_a_local_path_is_a_lake_too(tmp_path: Path) -> None:
    require_lake_extra()
    from load.lake.tables import open_lake, read_updated_at, upsert_batch

    lake = open_lake(str(tmp_path / "lake"))
    upsert_batch(lake, "ws-a", export_batch(synthetic_bodies(0, 0, 3, 3), "run-1"))
    assert len(read_updated_at(lake, "ws-a")) == 3
    assert (tmp_path / "lake" / "conversations" / "_delta_log").is_dir()


def test_a_missing_bucket_is_one_line_naming_the_table(endpoint: str) -> None:
    from load.lake.reasons import LakeError
    from load.lake.tables import open_lake

    with pytest.raises(LakeError) as raised:
        open_lake("s3://no-such-bucket/lake", s3_options(endpoint))
    message = str(raised.value)
    assert message.startswith("cannot create lake table s3://no-such-bucket/lake/")
    assert "lake-test" not in message


def test_a_commit_never_overwrites_another_writers(lake, endpoint: str) -> None:
    """The next log entry is already taken (another writer won the race): the merge commits
    after it with a conditional put (If-None-Match), and the other writer's entry stays."""
    import boto3

    from load.lake.tables import upsert_batch

    bucket, prefix = lake.url.removeprefix("s3://").split("/", 1)
    key = f"{prefix}/conversations/_delta_log/00000000000000000001.json"
    theirs = b'{"commitInfo":{"operation":"ANOTHER WRITER","timestamp":1}}\n'
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.put_object(Bucket=bucket, Key=key, Body=theirs)
    tables = export_batch(synthetic_bodies(0, 0, 3, 3), "run-1")
    upsert_batch(lake, "ws-a", tables)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == theirs
    assert lake.table("conversations").version() == 2
    assert _rows(lake, "conversations") == [(3,)]


def test_rows_without_their_conversation_are_refused_before_any_write(lake) -> None:
    from load.lake.tables import upsert_batch

    tables = export_batch(synthetic_bodies(0, 0, 3, 3), "run-1")
    tables["conversations"] = tables["conversations"].slice(1)
    with pytest.raises(ValueError, match="entries rows are in the batch without"):
        upsert_batch(lake, "ws-a", tables)
    assert _rows(lake, "entries") == [(0,)]

"""`convo-etl export --data-dir s3://...`: the export into a lake on a real S3 server on loopback
(moto's), from machines with nothing on their disks; its errors in one line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CONVO_ETL
from lake_support import (
    FAKE_AWS,
    assert_lake_equals_api,
)
from typer.testing import CliRunner

from emulator.server import RunningEmulator
from flows.cli import app

pytest_plugins = ("lake_fixtures",)
pytestmark = pytest.mark.usefixtures("prefect_harness")


def run_on_new_machine(
    args: list[str], env: dict[str, str], machine: Path
) -> subprocess.CompletedProcess[str]:
    """`convo-etl ARGS` as on a new worker: an empty HOME and an empty working directory."""
    (machine / "home").mkdir(parents=True)
    (machine / "cwd").mkdir()
    return subprocess.run(
        [CONVO_ETL, *args],
        env={**env, "HOME": str(machine / "home")},
        cwd=machine / "cwd",
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def lake_rows(url: str, query: str, *params: object) -> list[tuple]:
    from load.lake.reading import lake_connection

    return lake_connection(url).execute(query, list(params)).fetchall()


def test_second_export_from_an_empty_disk_fetches_only_the_changed_and_ends_equal(
    make_emulator: Callable[..., RunningEmulator],
    lake_url: str,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    emu = make_emulator(conversations=40, seed=11)
    args = ["export", "--data-dir", lake_url, "--base-url", emu.url, "--no-progress"]
    args += ["--page-size", "10", "--batch-size", "15", "--workspace", "team-a"]
    first = run_on_new_machine(args, cli_env, tmp_path / "first")
    assert first.returncode == 0, first.stderr
    listed = [c["id"] for c in emu.store.conversations_newest_first()]
    changed, gone = listed[3:6], [listed[10], listed[30]]
    for cid in changed:
        emu.store.touch(cid)
    for cid in gone:
        emu.store.delete(cid)
    emu.store.reset_counts()

    second = run_on_new_machine(args, cli_env, tmp_path / "second")

    assert second.returncode == 0, second.stderr
    counts = emu.store.request_counts
    assert (counts["history"], counts["messages"]) == (3, 3)
    assert {cid for op, cid in emu.store.request_log if op == "history"} == set(changed)
    assert sorted(cid for op, cid in emu.store.request_log if op == "get") == sorted(gone)
    assert_lake_equals_api(lake_url, "team-a", emu)
    runs = lake_rows(
        lake_url,
        "SELECT run_id, status, listed, fetched, marked_deleted, base_url, workspace "
        "FROM export_runs ORDER BY started_at",
    )
    assert [run[1:] for run in runs] == [
        ("completed", 40, 40, 0, emu.url, "team-a"),
        ("completed", 38, 3, 2, emu.url, "team-a"),
    ]
    marked = lake_rows(
        lake_url, "SELECT id, deleted_in_run FROM conversations WHERE deleted_at IS NOT NULL"
    )
    assert sorted(marked) == sorted((cid, runs[1][0]) for cid in gone)
    workspaces = lake_rows(
        lake_url,
        "SELECT DISTINCT workspace FROM conversations UNION SELECT DISTINCT workspace FROM "
        "entries UNION SELECT DISTINCT workspace FROM messages UNION SELECT DISTINCT workspace "
        "FROM content_chunks",
    )
    assert workspaces == [("team-a",)]
    # The lake keeps only raw: its views derive text and content as the local warehouse does.
    entry = next(e for e in emu.store.history(listed[0]) if e["type"] == "message.input")
    content = entry["content"]
    expected = content if isinstance(content, str) else "".join(c.get("text", "") for c in content)
    assert lake_rows(lake_url, "SELECT text, content FROM entries WHERE id = ?", entry["id"]) == [
        (expected, json.dumps(content, separators=(",", ":"), ensure_ascii=False))
    ]
    for machine in ("first", "second"):
        assert list((tmp_path / machine / "cwd").iterdir()) == []
    output = first.stdout + first.stderr + second.stdout + second.stderr
    assert FAKE_AWS["AWS_SECRET_ACCESS_KEY"] not in output


def test_purge_deleted_removes_them_from_every_lake_table(
    make_emulator: Callable[..., RunningEmulator], lake_url: str
) -> None:
    emu = make_emulator(conversations=12, seed=4)
    args = ["export", "--data-dir", lake_url, "--base-url", emu.url, "--no-progress"]
    env = {"MISTRAL_API_KEY": "test-key"}
    assert CliRunner().invoke(app, args, env=env).exit_code == 0
    gone = emu.store.conversations_newest_first()[2]["id"]
    emu.store.delete(gone)

    purged = CliRunner().invoke(app, [*args, "--purge-deleted"], env=env)

    assert purged.exit_code == 0, purged.stderr
    for table, key in (
        ("conversations", "id"),
        ("entries", "conversation_id"),
        ("messages", "conversation_id"),
        ("content_chunks", "conversation_id"),
    ):
        found = lake_rows(lake_url, f"SELECT count(*) FROM {table} WHERE {key} = ?", gone)
        assert found == [(0,)]
    assert lake_rows(lake_url, "SELECT purged FROM export_runs WHERE purged > 0") == [(1,)]
    assert_lake_equals_api(lake_url, "default", emu)

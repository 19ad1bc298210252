"""Exports sharing one lake at once (real S3 server on loopback: moto's): other workspaces both
complete; the same workspace is refused by the lease; `convo-etl sql` answers meanwhile."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import obstore
import orjson
import pytest
from conftest import CONVO_ETL
from lake_support import assert_lake_equals_api
from obstore.store import from_url
from typer.testing import CliRunner

from emulator.server import RunningEmulator
from flows.cli import app
from flows.export.flow import export_conversations

pytest_plugins = ("lake_fixtures",)
pytestmark = pytest.mark.usefixtures("prefect_harness")
HANG_BOUND_S = 120


def export_child(
    lake_url: str, emu: RunningEmulator, key: str, workspace: str, env: dict[str, str]
) -> subprocess.Popen[str]:
    """`convo-etl export` into the lake, started in a child process."""
    args = ["export", "--data-dir", lake_url, "--base-url", emu.url, "--no-progress"]
    args += ["--workspace", workspace, "--batch-size", "5", "--concurrency", "2"]
    return subprocess.Popen(
        [CONVO_ETL, *args],
        env={**env, "MISTRAL_API_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lake_rows(url: str, query: str) -> list[tuple]:
    from load.lake.reading import lake_connection

    return lake_connection(url).execute(query).fetchall()


def test_two_workspaces_export_into_one_lake_at_once(
    make_emulator: Callable[..., RunningEmulator], lake_url: str, cli_env: dict[str, str]
) -> None:
    one = make_emulator(conversations=20, seed=31, api_key="key-one", latency_ms=5)
    two = make_emulator(conversations=15, seed=32, api_key="key-two", latency_ms=5)
    children = [
        export_child(lake_url, one, "key-one", "one", cli_env),
        export_child(lake_url, two, "key-two", "two", cli_env),
    ]
    for child in children:
        _, errors = child.communicate(timeout=HANG_BOUND_S * 2)
        assert child.returncode == 0, errors[-3000:]
    assert_lake_equals_api(lake_url, "one", one)
    assert_lake_equals_api(lake_url, "two", two)
    per_workspace = "SELECT workspace, status, fetched FROM export_runs ORDER BY workspace"
    assert lake_rows(lake_url, per_workspace) == [
        ("one", "completed", 20),
        ("two", "completed", 15),
    ]


def test_same_workspace_twice_is_refused_by_the_lease_while_sql_answers(
    make_emulator: Callable[..., RunningEmulator], lake_url: str, cli_env: dict[str, str]
) -> None:
    # 200 ms a request: the holder (6 batches of 5, 2 at a time) is still fetching when the
    # test has seen its first rows (each look at the lake opens a DuckDB connection).
    emu = make_emulator(conversations=30, seed=33, latency_ms=200)
    holder = export_child(lake_url, emu, "test-key", "default", cli_env)
    try:
        stored = "SELECT count(*) FROM conversations"
        deadline = time.monotonic() + HANG_BOUND_S
        while not _has_tables(lake_url) or lake_rows(lake_url, stored) == [(0,)]:
            assert holder.poll() is None and time.monotonic() < deadline, holder.stderr
            time.sleep(0.2)
        emu.config.latency_ms = 3_000  # the holder now waits on the API, its lease held
        args = ["export", "--data-dir", lake_url, "--base-url", emu.url, "--no-progress"]

        second = CliRunner().invoke(app, args, env={"MISTRAL_API_KEY": "test-key"})
        answer = CliRunner().invoke(app, ["sql", stored, "--data-dir", lake_url, "--format", "csv"])

        assert holder.poll() is None
    finally:
        emu.config.latency_ms = 0
        _, errors = holder.communicate(timeout=HANG_BOUND_S)
    assert holder.returncode == 0, errors[-3000:]
    (run_id,) = lake_rows(lake_url, "SELECT run_id FROM export_runs")[0]
    assert second.exit_code == 1
    assert second.stderr.splitlines() == [second.stderr.strip()]
    assert second.stderr.startswith(
        f"error: workspace default is being exported by run {run_id} on "
    )
    assert f"(its lease {lake_url}/_leases/default.json expires then" in second.stderr
    assert answer.exit_code == 0, answer.stderr
    assert 1 <= int(answer.stdout.splitlines()[1]) < 30
    assert_lake_equals_api(lake_url, "default", emu)
    leases = obstore.list(from_url(f"{lake_url}/_leases")).collect()
    assert leases == []


def test_a_dead_holders_expired_lease_is_taken_and_its_run_marked_interrupted(
    make_emulator: Callable[..., RunningEmulator],
    lake_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from load.lake.runs import record_run
    from load.lake.tables import open_lake
    from transform.export_runs import export_run_table

    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    now = datetime.now(UTC)
    record_run(
        open_lake(lake_url),
        "default",
        export_run_table({"run_id": "dead-run", "started_at": now, "status": "running"}),
    )
    lease = {"run_id": "dead-run", "host": "gone", "expires_at": now - timedelta(seconds=1)}
    obstore.put(from_url(f"{lake_url}/_leases"), "default.json", orjson.dumps(lease))
    emu = make_emulator(conversations=4, seed=34)

    summary = asyncio.run(export_conversations(data_dir=lake_url, base_url=emu.url))

    runs = lake_rows(lake_url, "SELECT run_id, status FROM export_runs ORDER BY started_at")
    assert runs == [("dead-run", "interrupted"), (summary.run_id, "completed")]
    assert obstore.list(from_url(f"{lake_url}/_leases")).collect() == []


def _has_tables(url: str) -> bool:
    """Whether the export has created the lake's tables yet."""
    from load.lake.reasons import LakeError

    try:
        lake_rows(url, "SELECT 1")
    except LakeError:
        return False
    return True

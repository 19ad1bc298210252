"""`convo-etl export`, `sql` and `schedule` as a user runs them: real processes, real emulator.

Subprocesses talk to the session's Prefect test server: the harness sets PREFECT_API_URL only
inside this process's settings context, so the tests pass its value on in the environment
(rather than paying a temporary server's start-up in every child).
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import orjson
import pytest
from conftest import CLI_KEY as KEY
from conftest import CONVO_ETL
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound
from typer.testing import CliRunner, Result

from emulator.server import RunningEmulator
from flows.cli import app
from load.lock_wait import LOCK_WAIT_ENV


def convo_etl(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `convo-etl ARGS` to its end, capturing its output."""
    return subprocess.run(
        [CONVO_ETL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def invoke(args: list[str], **env: str) -> Result:
    """Run `convo-etl ARGS` in this process, where flows use the session's Prefect server."""
    return CliRunner().invoke(app, args, env={"MISTRAL_API_KEY": KEY, **env})


def run_sql(*args: str, **env: str) -> tuple[int, str, str]:
    """Run `convo-etl sql ARGS` in this process: exit code, stdout, stderr."""
    result = CliRunner().invoke(app, ["sql", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def error_lines(result: subprocess.CompletedProcess[str] | Result) -> list[str]:
    """The non-blank lines a command printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def table_counts(data_dir: Path) -> dict[str, int]:
    """Row counts of the export tables, to show a warehouse was left untouched."""
    tables = ("conversations", "entries", "messages", "export_runs", "export_failures")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return {t: connection.table(t).shape[0] for t in tables}


def test_export_without_a_key_says_how_to_set_one_or_run_the_demo(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    result = convo_etl(["export", "--data-dir", str(data_dir)], env)
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "MISTRAL_API_KEY is not set" in line
    assert "convo-etl demo" in line
    assert list(data_dir.iterdir()) == []


def test_export_prints_its_summary_and_a_second_run_fetches_nothing(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, prefect_harness: None
) -> None:
    emu = make_emulator(conversations=30, seed=11)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--batch-size", "8"]
    first = invoke(args)
    assert first.exit_code == 0, first.stderr
    assert "starting Prefect" not in first.stderr
    for label, value in (("listed", "30"), ("fetched", "30"), ("batches", "4")):
        assert any(label in line and value in line.split() for line in first.stderr.splitlines())
    assert "fetch phase" in first.stderr
    assert table_counts(data_dir)["conversations"] == 30

    emu.store.reset_counts()
    second = invoke(["export", "--no-progress", *args[1:]])
    assert second.exit_code == 0, second.stderr
    assert set(emu.store.request_counts) == {"list"}
    assert any("unchanged" in line and "30" in line.split() for line in second.stderr.splitlines())


def test_data_dir_comes_from_convo_etl_data_dir(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, prefect_harness: None
) -> None:
    emu = make_emulator(conversations=3, seed=12)
    result = invoke(
        ["export", "--no-progress"], CONVO_ETL_DATA_DIR=str(data_dir), MISTRAL_BASE_URL=emu.url
    )
    assert result.exit_code == 0, result.stderr
    assert table_counts(data_dir)["conversations"] == 3


def test_failures_beyond_max_failures_exit_non_zero(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, prefect_harness: None
) -> None:
    emu = make_emulator(conversations=3, seed=13)
    real = emu.store.conversations_newest_first()[0]["id"]
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--no-progress"]
    missing = "conv_" + "f" * 32
    args += ["--conversation-id", real, "--conversation-id", missing]
    failed = invoke(args)
    assert failed.exit_code == 1
    assert f"{missing} (get: HTTP 404:" in failed.stderr
    assert error_lines(failed)[-1] == (
        "error: 1 conversation could not be fetched (allowed: 0); see the export_failures table"
    )
    allowed = invoke([*args, "--max-failures", "1"])
    assert allowed.exit_code == 0, allowed.stderr


def test_a_rejected_key_is_one_line_and_leaves_the_warehouse_untouched(
    make_emulator: Callable[..., RunningEmulator], tmp_path: Path, cli_env: dict[str, str]
) -> None:
    emu = make_emulator(conversations=6, seed=14, api_key="the-right-key")
    wrong_key = "sk-wrong-0123456789abcdef"
    fresh = tmp_path / "fresh"
    rejected = convo_etl(
        ["export", "--base-url", emu.url, "--data-dir", str(fresh)],
        {**cli_env, "MISTRAL_API_KEY": wrong_key},
    )
    assert rejected.returncode == 1
    (line,) = error_lines(rejected)
    assert "API key rejected" in line and "MISTRAL_API_KEY" in line
    assert wrong_key not in rejected.stdout + rejected.stderr
    assert not fresh.exists() or list(fresh.iterdir()) == []

    used = tmp_path / "used"
    args = ["export", "--base-url", emu.url, "--data-dir", str(used), "--no-progress"]
    ok = invoke(args, MISTRAL_API_KEY="the-right-key")
    assert ok.exit_code == 0, ok.stderr
    before = table_counts(used)
    emu.store.touch(emu.store.conversations_newest_first()[0]["id"])
    again = convo_etl([*args, "--full"], {**cli_env, "MISTRAL_API_KEY": wrong_key})
    assert again.returncode == 1
    assert len(error_lines(again)) == 1
    assert table_counts(used) == before


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], None]]:
    """Hold a warehouse open for writing from another process, as a running export would."""
    processes: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> None:
        code = (
            "import duckdb, sys, time\n"
            "connection = duckdb.connect(sys.argv[1])\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"

    yield hold
    for process in processes:
        process.kill()
        process.wait()


def test_a_locked_warehouse_is_one_clear_line(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    cli_env: dict[str, str],
    lock_holder: Callable[[Path], None],
) -> None:
    emu = make_emulator(conversations=3, seed=15)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--no-progress"]
    assert invoke(args).exit_code == 0
    lock_holder(data_dir / "warehouse.duckdb")

    # The holder is a writer of an older version (it serves no reads): with no wait allowed,
    # both fail at once.
    export = convo_etl(args, {**cli_env, LOCK_WAIT_ENV: "0"})
    assert export.returncode == 1
    (line,) = error_lines(export)
    assert "is locked by another process" in line

    code, _, err = run_sql("select 1", "--data-dir", str(data_dir), **{LOCK_WAIT_ENV: "0"})
    assert code == 1
    (line,) = err.splitlines()
    assert "is an export writing to it?" in line


@pytest.fixture
def exported(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, prefect_harness: None
) -> RunningEmulator:
    """A data dir holding a finished export of a small emulator."""
    emu = make_emulator(conversations=4, seed=16)
    result = invoke(["export", "--base-url", emu.url, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.stderr
    return emu


def test_sql_prints_csv_json_and_tables(exported: RunningEmulator, data_dir: Path) -> None:
    ids = sorted(c["id"] for c in exported.store.conversations_newest_first())
    query = "select id, created_at, 42 as answer, null as nothing from conversations order by id"

    code, out, _ = run_sql(query, "--data-dir", str(data_dir), "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "id,created_at,answer,nothing"
    assert [line.split(",")[0] for line in lines[1:]] == ids
    assert all(line.endswith(",42,") for line in lines[1:])

    code, out, _ = run_sql(query, "--data-dir", str(data_dir), "--format", "json")
    assert code == 0
    records = orjson.loads(out)
    assert [r["id"] for r in records] == ids
    assert all(r["answer"] == 42 and r["nothing"] is None for r in records)
    created = {c["id"]: c["created_at"] for c in exported.store.conversations_newest_first()}
    assert all(r["created_at"][:19] == created[r["id"]][:19] for r in records)

    code, out, _ = run_sql(
        "select count(*) as n from latest_conversations", "--data-dir", str(data_dir)
    )
    assert code == 0
    cells = [line.strip(" │┃") for line in out.splitlines()]
    assert "n" in cells and "4" in cells and "1 row" in out


def test_sql_errors_are_one_line(exported: RunningEmulator, data_dir: Path, tmp_path: Path) -> None:
    code, out, err = run_sql("select nope from conversations", "--data-dir", str(data_dir))
    assert code == 1 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: query failed: Binder Error")

    code, _, err = run_sql("delete from conversations", "--data-dir", str(data_dir))
    assert code == 1
    assert "read-only" in err and len(err.splitlines()) == 1

    code, _, err = run_sql("select 1", "--data-dir", str(tmp_path / "nowhere"))
    assert code == 1
    assert "no warehouse at" in err and "convo-etl export" in err


def test_kill_9_mid_run_leaves_a_consistent_warehouse_that_the_next_run_completes(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, cli_env: dict[str, str]
) -> None:
    emu = make_emulator(conversations=120, seed=17, latency_ms=25)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--no-progress"]
    process = subprocess.Popen(
        [CONVO_ETL, *args, "--batch-size", "10", "--concurrency", "4"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = data_dir / "parquet" / "conversations"
    deadline = time.monotonic() + 90
    # Batches are stored one after another: batch 2's part exists only once batch 1 is merged.
    while len(list(parts.glob("*.parquet"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        stored = connection.execute(
            "select c.id, count(e.id) from conversations c "
            "left join entries e on e.conversation_id = c.id group by c.id"
        ).fetchall()
        runs = connection.execute("select status from export_runs").fetchall()
    assert 10 <= len(stored) < 120, "the kill should land mid-run"
    assert all(count == len(emu.store.history(cid)) for cid, count in stored)
    assert runs == [("running",)]

    emu.store.reset_counts()
    rerun = invoke(args)
    assert rerun.exit_code == 0, rerun.stderr
    assert emu.store.request_counts["history"] == 120 - len(stored)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        keys = connection.execute(
            "select count(*), count(distinct (conversation_id, id)) from entries"
        ).fetchone()
        conversations = connection.execute("select count(*) from conversations").fetchone()
    total_entries = sum(
        len(emu.store.history(c["id"])) for c in emu.store.conversations_newest_first()
    )
    assert keys == (total_entries, total_entries)
    assert conversations == (120,)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        statuses = connection.execute("select status from export_runs order by started_at")
        assert [s for (s,) in statuses.fetchall()] == ["interrupted", "completed"]


def test_schedule_without_a_prefect_server_says_how_to_start_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = convo_etl(["schedule", "--cron", "0 2 * * *"], {**env, "MISTRAL_API_KEY": KEY})
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "prefect server start" in line and "PREFECT_API_URL" in line


def test_schedule_rejects_a_bad_cron_in_one_line() -> None:
    result = CliRunner().invoke(app, ["schedule", "--cron", "every night"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ['error: Invalid cron string: "every night"']


async def read_deployment(name: str) -> DeploymentResponse | None:
    """The deployment `export-conversations/NAME` from the Prefect API, or None."""
    async with get_client() as client:
        try:
            return await client.read_deployment_by_name(f"export-conversations/{name}")
        except ObjectNotFound:
            return None


async def run_deployment_now(deployment: DeploymentResponse, timeout: float) -> str:
    """Start a run of the deployment, as its schedule would, and wait for its final state."""
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(deployment.id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = await client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                return run.state.type.value
            await asyncio.sleep(0.5)
    return "TIMED OUT"


def test_schedule_serves_a_cron_deployment_whose_runs_export(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    emu = make_emulator(conversations=5, seed=18)
    name = f"nightly-test-{os.getpid()}"
    log = tmp_path / "schedule.log"
    args = ["schedule", "--cron", "0 2 * * *", "--name", name, "--data-dir", str(data_dir)]
    with log.open("w") as sink:
        process = subprocess.Popen(
            [CONVO_ETL, *args, "--base-url", emu.url], env=cli_env, stdout=sink, stderr=sink
        )
    try:
        deadline = time.monotonic() + 60
        deployment = None
        while deployment is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            deployment = asyncio.run(read_deployment(name))
        assert deployment is not None, log.read_text()
        assert f"export-conversations/{name}" in log.read_text()
        (schedule,) = deployment.schedules
        assert schedule.schedule.cron == "0 2 * * *"
        assert deployment.parameters["data_dir"] == str(data_dir.resolve())
        assert KEY not in orjson.dumps(deployment.parameters).decode()

        assert asyncio.run(run_deployment_now(deployment, timeout=90)) == "COMPLETED"
        assert table_counts(data_dir)["conversations"] == 5
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

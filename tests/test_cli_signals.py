"""Ctrl-C and SIGTERM stop `export`, `replay` and `schedule` within seconds: one line, exit 130 or
143, the run recorded as interrupted (never running), its Prefect flow run ended, and the next run
completes exactly what is missing. Real processes against a slow emulator.
"""

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import duckdb
import pytest
from conftest import CONVO_ETL, run_cli
from prefect.client.orchestration import get_client

from emulator.server import RunningEmulator

SIGNALS = pytest.mark.parametrize(
    ("signum", "code", "line"),
    [(signal.SIGINT, 130, "error: interrupted"), (signal.SIGTERM, 143, "error: terminated")],
)
STOP_WITHIN_S = 30  # a hang check: measured ~1 s


def started(args: list[str], env: dict[str, str], stderr: Path) -> subprocess.Popen[bytes]:
    """`convo-etl ARGS` in its own process group, as a terminal starts a command."""
    with stderr.open("wb") as sink:
        return subprocess.Popen(
            [CONVO_ETL, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Wait until ``ready()`` (the run is under way), failing if the process ends first."""
    deadline = time.monotonic() + 90
    while not ready():
        assert process.poll() is None, "the run ended before the signal"
        assert time.monotonic() < deadline, "the run never got under way"
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], signum: int) -> float:
    """Ctrl-C (SIGINT to the group) or SIGTERM (to the process); seconds until it exited."""
    sent = time.monotonic()
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    try:
        process.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"still running {STOP_WITHIN_S} s after the signal")
    return time.monotonic() - sent


def error_lines(stderr: Path) -> list[str]:
    """The `error:` lines a command printed (Prefect's start-up note aside)."""
    return [line for line in stderr.read_text().splitlines() if line.startswith(("error", "Tr"))]


async def flow_run_state(run_id: str) -> str:
    """The state of a Prefect flow run, by id."""
    async with get_client() as client:
        run = await client.read_flow_run(UUID(run_id))
    return run.state.type.value if run.state else "NONE"


@SIGNALS
def test_a_signal_stops_export_in_one_line_and_the_next_run_completes(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    signum: int,
    code: int,
    line: str,
) -> None:
    emu = make_emulator(conversations=60, seed=21, latency_ms=100)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--no-progress"]
    log = tmp_path / "stderr.log"
    process = started([*args, "--batch-size", "5", "--concurrency", "2"], cli_env, log)
    parts = data_dir / "parquet" / "conversations"
    # A batch's parts are written before its merge, and batches are stored in order: a second
    # batch's part means the first batch is in the warehouse.
    wait_until(lambda: len(list(parts.glob("*.parquet"))) >= 2, process)

    assert stop(process, signum) < STOP_WITHIN_S
    assert process.returncode == code
    assert error_lines(log) == [line]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        runs = connection.execute("select run_id, status from export_runs").fetchall()
        stored = connection.execute("select count(*) from conversations").fetchone()[0]
    assert [status for _, status in runs] == ["interrupted"]
    assert asyncio.run(flow_run_state(runs[0][0])) in {"CRASHED", "CANCELLED"}
    assert 0 < stored < 60

    emu.store.reset_counts()
    rerun = run_cli(args, cli_env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert emu.store.request_counts["history"] == 60 - stored
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        statuses = connection.execute("select status from export_runs order by started_at")
        assert [s for (s,) in statuses.fetchall()] == ["interrupted", "completed"]


@SIGNALS
def test_a_signal_stops_replay_in_one_line(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    signum: int,
    code: int,
    line: str,
) -> None:
    emu = make_emulator(conversations=1, latency_ms=300)
    prompts = tmp_path / "prompts.csv"
    rows = "".join(f"p{i},Question {i}?,mistral-small-latest\n" for i in range(40))
    prompts.write_text("id,prompt,model\n" + rows, encoding="utf-8")
    log = tmp_path / "stderr.log"
    args = ["replay", str(prompts), "--base-url", emu.url, "--data-dir", str(data_dir)]
    process = started([*args, "--concurrency", "1", "--run-id", "sig"], cli_env, log)
    wait_until(lambda: sum(emu.store.request_counts.values()) > 0, process)

    assert stop(process, signum) < STOP_WITHIN_S
    assert process.returncode == code
    assert error_lines(log) == [line]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        runs = connection.execute("select run_id, status from replay_runs").fetchall()
    assert runs == [("sig", "interrupted")]


@SIGNALS
def test_a_signal_stops_schedule_serving_in_one_line(
    data_dir: Path, tmp_path: Path, cli_env: dict[str, str], signum: int, code: int, line: str
) -> None:
    log = tmp_path / "stderr.log"
    process = started(["schedule", "--data-dir", str(data_dir)], cli_env, log)
    wait_until(lambda: "serving deployment" in log.read_text(), process)

    assert stop(process, signum) < STOP_WITHIN_S
    assert process.returncode == code
    assert error_lines(log) == [line]

"""A replay run's status: completed when it ends, and a run killed with -9 (left `running`) shown
as interrupted by `convo-etl runs` once a later run has opened the warehouse."""

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
from conftest import CONVO_ETL, run_cli

from emulator.server import RunningEmulator


def listed_runs(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """`convo-etl runs --format json`: each run's status by run id."""
    result = run_cli(["runs", "--data-dir", str(data_dir), "--format", "json"], env)
    assert result.returncode == 0, result.stderr
    return {run["run_id"]: run["status"] for run in json.loads(result.stdout)}


def test_a_killed_replay_is_shown_interrupted_once_a_later_run_starts(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    emu = make_emulator(conversations=1, latency_ms=300)
    prompts = tmp_path / "prompts.csv"
    rows = "".join(f"p{i},Question {i}?,mistral-small-latest\n" for i in range(20))
    prompts.write_text("id,prompt,model\n" + rows, encoding="utf-8")
    args = ["replay", str(prompts), "--base-url", emu.url, "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [CONVO_ETL, *args, "--concurrency", "1", "--run-id", "killed"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while sum(emu.store.request_counts.values()) == 0:
        assert process.poll() is None and time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert listed_runs(data_dir, cli_env) == {"killed": "running"}

    emu.config.latency_ms = 0
    one_row = tmp_path / "one.csv"
    one_row.write_text("id,prompt,model\nq,Hi?,mistral-small-latest\n", encoding="utf-8")
    later = run_cli(["replay", str(one_row), *args[2:], "--run-id", "later"], cli_env)
    assert later.returncode == 0, later.stderr
    assert listed_runs(data_dir, cli_env) == {"killed": "interrupted", "later": "completed"}
    part = data_dir / "parquet" / "replay_runs" / "killed.parquet"
    assert duckdb.read_parquet(str(part)).select("status").fetchall() == [("interrupted",)]

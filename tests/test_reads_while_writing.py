"""Reading while writing: `convo-etl sql` answers from the last committed state while a real
export (a child process, against a slow emulator) holds the warehouse, a write sent to the
writer is refused in one line, no secret crosses the read socket, and a reader holding the file
makes a starting export wait instead of failing."""

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import CONVO_ETL, run_cli

from emulator.server import RunningEmulator
from load.read_socket import SOCKET_NAME

CONVERSATIONS = 150
# Enough conversations at 1 s each that the export outlasts its readers on a loaded machine;
# the bound below is generous: a hang check, not a timing.
HANG_S = 240


def _export_args(emu: RunningEmulator, data_dir: Path, *extra: str) -> list[str]:
    return ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--no-progress", *extra]


@pytest.fixture
def children() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start child processes that the test ends, whatever happens."""
    started: list[subprocess.Popen[str]] = []

    def start(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
        process = subprocess.Popen(args, env=env, text=True, **kwargs)  # type: ignore[call-overload]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _sql(data_dir: Path, query: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONVO_ETL, "sql", query, "--data-dir", str(data_dir), "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=False,
    )


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + HANG_S
    while not condition():
        assert process.poll() is None, "the export ended before the test could read"
        assert time.monotonic() < deadline, "the export never reached the awaited state"
        time.sleep(0.05)


def test_sql_answers_while_an_export_writes(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    cli_env: dict[str, str],
    children: Callable[..., subprocess.Popen[str]],
) -> None:
    # Slow enough to be mid-run for every query below; made fast again once they are answered.
    emu = make_emulator(conversations=CONVERSATIONS, seed=31, latency_ms=1000)
    secret = "sk-reads-" + "7" * 24
    export = children(
        [CONVO_ETL, *_export_args(emu, data_dir, "--concurrency", "1", "--batch-size", "2")],
        {**cli_env, "MISTRAL_API_KEY": secret},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    socket_file = data_dir / SOCKET_NAME
    _wait_for(socket_file.exists, export)
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o600

    reader_env = {k: v for k, v in cli_env.items() if k != "MISTRAL_API_KEY"}
    counts, during = [], 0
    for _ in range(4):
        answer = _sql(data_dir, "select count(*) from conversations", reader_env)
        assert answer.returncode == 0, answer.stderr
        assert "lock" not in answer.stderr.lower()
        counts.append(int(answer.stdout.splitlines()[1]))
        during += export.poll() is None
    assert during >= 2
    assert counts == sorted(counts)
    assert counts[-1] < CONVERSATIONS

    refused = _sql(data_dir, "delete from conversations", reader_env)
    assert refused.returncode == 1
    (line,) = refused.stderr.splitlines()
    assert "refused: DELETE" in line

    secrets = _sql(
        data_dir,
        "select (select string_agg(value, ',') from duckdb_settings()),"
        " (select count(*) from duckdb_secrets()), (select string_agg(raw, '') from conversations)",
        reader_env,
    )
    assert secrets.returncode == 0, secrets.stderr
    assert secret not in secrets.stdout + secrets.stderr
    assert export.poll() is None, "the export ended before every query was answered by it"
    emu.config.latency_ms = 0

    _, export_err = export.communicate(timeout=HANG_S)
    assert export.returncode == 0, export_err
    assert not socket_file.exists()
    final = _sql(data_dir, "select count(*) from conversations", reader_env)
    assert (final.returncode, final.stdout.splitlines()[1]) == (0, str(CONVERSATIONS))


_READ_HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
sys.stdin.readline()
connection.close()
print("released", flush=True)
sys.stdin.readline()
"""


def test_a_reader_holding_the_file_makes_a_starting_export_wait(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    cli_env: dict[str, str],
    children: Callable[..., subprocess.Popen[str]],
) -> None:
    emu = make_emulator(conversations=5, seed=32)
    first = run_cli(_export_args(emu, data_dir), cli_env)
    assert first.returncode == 0, first.stderr
    holder = children(
        [sys.executable, "-c", _READ_HOLDER, str(data_dir / "warehouse.duckdb")],
        dict(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"

    emu.store.add_conversation()
    export = children(
        [CONVO_ETL, *_export_args(emu, data_dir)],
        {**cli_env, "CONVO_ETL_LOCK_WAIT": str(HANG_S)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert export.stderr is not None
    waiting = export.stderr.readline()
    assert "waiting for another process to release" in waiting
    holder.stdin.write("release\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"

    rest = export.communicate(timeout=HANG_S)[1]
    assert export.returncode == 0, rest
    assert "lock" not in rest.lower()
    holder.stdin.write("done\n")
    holder.stdin.flush()
    final = _sql(data_dir, "select count(*) from conversations", cli_env)
    assert final.stdout.splitlines()[1] == "6"


def test_a_writer_that_serves_no_reads_makes_sql_wait_then_fail_in_one_line(
    data_dir: Path,
    cli_env: dict[str, str],
    children: Callable[..., subprocess.Popen[str]],
) -> None:
    holder = children(
        [
            sys.executable,
            "-c",
            "import duckdb, sys\n"
            "connection = duckdb.connect(sys.argv[1])\n"
            "print('writing', flush=True)\n"
            "sys.stdin.readline()\n",
            str(data_dir / "warehouse.duckdb"),
        ],
        dict(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
    answer = _sql(data_dir, "select 1", {**cli_env, "CONVO_ETL_LOCK_WAIT": "1"})
    assert answer.returncode == 1
    waiting, failed = answer.stderr.splitlines()
    assert "waiting for the process writing to" in waiting
    assert failed.startswith("error: cannot open")
    assert "serves no reads" in failed


def test_replay_report_reads_a_run_while_the_replay_writes_it(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    children: Callable[..., subprocess.Popen[str]],
) -> None:
    emu = make_emulator(conversations=1, latency_ms=2000)
    prompts = tmp_path / "p.csv"
    rows = [f"r{n},Question {n}?" for n in range(30)]
    prompts.write_text("id,prompt\n" + "\n".join(rows) + "\n", encoding="utf-8")
    replay = children(
        [
            CONVO_ETL, "replay", str(prompts), "--base-url", emu.url, "--data-dir", str(data_dir),
            "--model", "mistral-small-latest", "--no-stream", "--concurrency", "1",
            "--run-id", "slow-run",
        ],
        cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_for((data_dir / SOCKET_NAME).exists, replay)

    page = tmp_path / "report.html"
    report = run_cli(
        ["replay-report", "slow-run", "--data-dir", str(data_dir), "-o", str(page)], cli_env
    )
    assert report.returncode == 0, report.stderr
    assert "slow-run" in page.read_text(encoding="utf-8")
    assert replay.poll() is None, "the replay ended before the report was read from it"

    emu.config.latency_ms = 0
    _, replay_err = replay.communicate(timeout=HANG_S)
    assert replay.returncode == 0, replay_err
    final = _sql(data_dir, "select count(*) from replay_results", cli_env)
    assert final.stdout.splitlines()[1] == "30"

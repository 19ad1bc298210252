"""`convo-etl export` lists and fetches while Prefect comes up (flows.export.head_start).

The flow run adopts what was begun: each conversation is still asked for once, and every row is
stored by the flow run. A command whose Prefect never comes up, or that is interrupted before
it does, leaves no warehouse behind, an existing warehouse untouched, and no server running.
"""

import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from conftest import CLI_KEY, CONVO_ETL, run_cli, servers_of

from emulator.server import RunningEmulator

ARGS = ["--no-progress", "--batch-size", "25", "--page-size", "10"]


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PREFECT_HOME for this module's temporary servers: its database is migrated once."""
    return tmp_path_factory.mktemp("prefect-home")


def without_prefect_api(prefect_home: Path) -> dict[str, str]:
    """The environment of a command that starts its own temporary Prefect server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return {**env, "PREFECT_HOME": str(prefect_home), "MISTRAL_API_KEY": CLI_KEY}


def summary_value(stderr: str, label: str) -> int:
    """A number of the summary table the command printed."""
    match = re.search(rf"│ {re.escape(label)}\s+│\s+([\d,]+) │", stderr)
    assert match, f"no {label!r} row in:\n{stderr}"
    return int(match.group(1).replace(",", ""))


def closed_port_url() -> str:
    """A Prefect API URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def conversation_count(data_dir: Path) -> int:
    """The conversations stored in the data dir's warehouse."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        (count,) = connection.execute("select count(*) from conversations").fetchone() or (0,)
    return count


def test_an_export_fetches_while_prefect_starts_and_asks_for_each_conversation_once(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, prefect_home: Path
) -> None:
    emu = make_emulator(conversations=200, seed=31, latency_ms=5)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), *ARGS]
    result = run_cli(args, without_prefect_api(prefect_home))
    assert result.returncode == 0, result.stderr
    assert "starting Prefect" in result.stderr
    assert summary_value(result.stderr, "fetched") == 200
    assert summary_value(result.stderr, "fetched ahead of the flow run") > 0
    asked = Counter(
        (operation, cid)
        for operation, cid in emu.store.request_log
        if operation in ("history", "messages")
    )
    assert len(asked) == 400 and set(asked.values()) == {1}
    assert conversation_count(data_dir) == 200
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        runs = connection.execute("select status, fetched from export_runs").fetchall()
    assert runs == [("completed", 200)]


def test_an_incremental_run_started_ahead_fetches_only_what_changed(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, prefect_home: Path
) -> None:
    emu = make_emulator(conversations=120, seed=32)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), *ARGS]
    env = without_prefect_api(prefect_home)
    assert run_cli(args, env).returncode == 0
    emu.store.reset_counts()
    unchanged = run_cli(args, env)
    assert unchanged.returncode == 0, unchanged.stderr
    assert set(emu.store.request_counts) == {"list"}
    assert summary_value(unchanged.stderr, "unchanged") == 120
    assert summary_value(unchanged.stderr, "fetched ahead of the flow run") == 0

    changed = [c["id"] for c in emu.store.conversations_newest_first()[40:43]]
    for cid in changed:
        emu.store.touch(cid)
    emu.store.reset_counts()
    again = run_cli(args, env)
    assert again.returncode == 0, again.stderr
    assert sorted(cid for op, cid in emu.store.request_log if op == "history") == sorted(changed)
    assert summary_value(again.stderr, "fetched") == 3
    assert summary_value(again.stderr, "unchanged") == 117


def test_a_prefect_that_never_answers_leaves_no_new_warehouse(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=50, seed=33)
    env = {**os.environ, "PREFECT_API_URL": closed_port_url(), "MISTRAL_API_KEY": CLI_KEY}
    result = run_cli(["export", "--base-url", emu.url, "--data-dir", str(data_dir), *ARGS], env)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: no Prefect API answers at")
    assert not (data_dir / "warehouse.duckdb").exists()
    assert not (data_dir / "warehouse.duckdb.wal").exists()


def test_a_prefect_that_never_answers_leaves_an_existing_warehouse_as_it_was(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, cli_env: dict[str, str]
) -> None:
    emu = make_emulator(conversations=40, seed=34)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), *ARGS]
    assert run_cli(args, cli_env).returncode == 0
    failed = run_cli(args, {**cli_env, "PREFECT_API_URL": closed_port_url()})
    assert failed.returncode == 1
    assert conversation_count(data_dir) == 40
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        runs = connection.execute("select status from export_runs").fetchall()
    assert runs == [("completed",)]


def test_ctrl_c_while_prefect_starts_stops_the_head_start_and_its_server(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, tmp_path: Path
) -> None:
    emu = make_emulator(conversations=300, seed=35, latency_ms=50)
    home = tmp_path / "fresh-prefect"  # a new database: the server needs seconds more to answer
    command = [CONVO_ETL, "export", "--base-url", emu.url, "--data-dir", str(data_dir), *ARGS]
    process = subprocess.Popen(
        command, env=without_prefect_api(home), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60  # a hang check
    while not emu.store.request_counts["list"]:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert [line for line in stderr.splitlines() if line.strip()][-1] == "error: interrupted"
    assert "Traceback" not in stderr
    assert not (data_dir / "warehouse.duckdb").exists()
    while servers_of(home):
        assert time.monotonic() < deadline, "the temporary Prefect server outlived the command"
        time.sleep(0.2)


def test_a_temporary_prefect_server_that_cannot_start_is_one_line_naming_why(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, tmp_path: Path
) -> None:
    emu = make_emulator(conversations=50, seed=36)
    env = without_prefect_api(tmp_path / "prefect")
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
        f"sqlite+aiosqlite:///{tmp_path / 'no such dir' / 'prefect.db'}"
    )
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), *ARGS]
    result = run_cli(args, env, timeout=60)  # a hang check: it once retried for 90 s
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == (
        "error: the temporary Prefect server exited with code 3: sqlalchemy.exc.OperationalError: "
        "(sqlite3.OperationalError) unable to open database file"
    )
    assert "Traceback" not in result.stderr
    assert not (data_dir / "warehouse.duckdb").exists()


def test_a_head_start_against_a_faulty_api_stores_everything(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, cli_env: dict[str, str]
) -> None:
    emu = make_emulator(conversations=150, seed=37, fault_rate=0.1)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), *ARGS]
    result = run_cli(args, cli_env)
    assert result.returncode == 0, result.stderr
    assert summary_value(result.stderr, "retries") > 0
    assert summary_value(result.stderr, "failed") == 0
    assert conversation_count(data_dir) == 150
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        (entries,) = connection.execute("select count(*) from entries").fetchone() or (0,)
    listed = emu.store.conversations_newest_first()
    assert entries == sum(len(emu.store.history(c["id"])) for c in listed)

"""Fail fast, in one line: a PREFECT_API_URL where nothing answers, replay without a key;
the temporary Prefect server never sees the API key."""

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from conftest import run_cli
from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.console import Console

from emulator.server import RunningEmulator
from flows.prefect_api import prefect_api

CONVO_ETL = str(Path(sys.executable).parent / "convo-etl")
KEY = "sk-test-secret-key"


def closed_port_url() -> str:
    """A Prefect API URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


@pytest.mark.parametrize("command", ["export", "replay", "schedule"])
def test_a_prefect_api_url_that_answers_nothing_is_one_line(
    command: str, emulator: RunningEmulator, data_dir: Path, tmp_path: Path
) -> None:
    url = closed_port_url()
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("id,prompt,model\na,Hi?,mistral-small-latest\n", encoding="utf-8")
    first = {"export": [], "replay": [str(prompts)], "schedule": []}[command]
    env = {**os.environ, "PREFECT_API_URL": url, "MISTRAL_API_KEY": KEY}
    result = run_cli(
        [command, *first, "--base-url", emulator.url, "--data-dir", str(data_dir)], env, timeout=120
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1
    assert lines[-1] == (
        f"error: no Prefect API answers at {url} (PREFECT_API_URL): start it, or unset "
        "PREFECT_API_URL to use a temporary one"
    )
    assert not [line for line in lines if line.startswith(("Traceback", "  File"))]
    assert len(lines) <= 2  # replay names its run id first


def test_the_temporary_prefect_server_does_not_get_the_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        prefect_api(Console(stderr=True)) as url,
    ):
        port = url.rsplit(":", 1)[1].split("/")[0]
        server = next(
            pid
            for pid in os.listdir("/proc")
            if pid.isdigit() and f"--port\0{port}\0".encode() in _cmdline(pid)
        )
        environment = Path(f"/proc/{server}/environ").read_bytes()
        session = os.getsid(int(server))
    assert b"MISTRAL_API_KEY" not in environment and KEY.encode() not in environment
    assert session != os.getsid(0), "the server runs in its own session"


def _cmdline(pid: str) -> bytes:
    """A process's command line, NUL-separated (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() + b"\0"
    except OSError:
        return b""


def test_replay_without_a_key_against_any_api_is_one_line(
    emulator: RunningEmulator, data_dir: Path, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("id,prompt,model\na,Hi?,mistral-small-latest\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    env["MISTRAL_BASE_URL"] = emulator.url
    result = run_cli(["replay", str(prompts), "--data-dir", str(data_dir)], env, timeout=60)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [result.stderr.strip()]
    assert result.stderr.startswith("error: MISTRAL_API_KEY is not set.")


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_replay_stops_at_the_first_rejected_key_and_a_resume_sends_the_rest(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    stream: str,
) -> None:
    emu = make_emulator(conversations=2, api_key="sk-the-right-key")
    prompts = tmp_path / "prompts.csv"
    rows = "".join(f"r{i},Question {i}?,mistral-small-latest\n" for i in range(12))
    prompts.write_text("id,prompt,model\n" + rows, encoding="utf-8")
    args = ["replay", str(prompts), "--data-dir", str(data_dir), "--run-id", "keyed", stream]
    wrong = {**cli_env, "MISTRAL_BASE_URL": emu.url, "MISTRAL_API_KEY": "sk-a-wrong-key"}

    refused = run_cli([*args, "--concurrency", "1"], wrong, timeout=120)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error")]
    assert refused.returncode == 1
    operation = "start_stream" if stream == "--stream" else "start"
    rejected = f"API key rejected by {emu.url}: check MISTRAL_API_KEY"
    assert errors == [f"error: {operation}: HTTP 401: {rejected}"]
    assert "Traceback" not in refused.stderr
    assert sum(emu.store.rejected_counts.values()) == 1  # the first send, and no other
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("select count(*) from replay_results").fetchone() == (0,)

    right = {**wrong, "MISTRAL_API_KEY": "sk-the-right-key"}
    resumed = run_cli(args, right, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert sum(emu.store.turns_created.values()) == 12
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.execute(
            "select count(*) from replay_results where status = 'ok'"
        ).fetchone() == (12,)

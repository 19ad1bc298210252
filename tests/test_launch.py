"""The `convo-etl` entry point starts the temporary Prefect server before its imports when the
command will need one, and never leaves it behind."""

import os
import time
from pathlib import Path

import pytest
from conftest import run_cli, servers_of

from flows.launch import needs_temporary_server


@pytest.mark.parametrize(
    ("args", "needed"),
    [
        (["export", "--no-progress"], True),
        (["replay", "p.csv"], True),
        (["demo"], True),
        (["export", "--help"], False),
        (["sql", "select 1"], False),
        (["schedule"], False),
        ([], False),
    ],
)
def test_only_commands_that_run_flows_start_a_server_early(args: list[str], needed: bool) -> None:
    assert needs_temporary_server(args) is (needed and not os.environ.get("PREFECT_API_URL"))


def test_a_command_that_fails_before_its_flow_stops_the_early_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MISTRAL_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    result = run_cli(["export", "--data-dir", str(tmp_path / "data")], env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: MISTRAL_API_KEY is not set")
    deadline = time.monotonic() + 15  # a hang check: SIGTERM ends it at once
    while servers_of(tmp_path / "prefect"):
        assert time.monotonic() < deadline, "the early Prefect server outlived the command"
        time.sleep(0.2)

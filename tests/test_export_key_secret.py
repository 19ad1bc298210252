"""`export --api-key-secret NAME --rate-limit-name NAME`: the key from a Prefect Secret block and
the rate from a Prefect rate limit, in a run of this process; and their one-line failures."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner, Result

from emulator.server import RunningEmulator
from flows.cli import app

KEY = "sk-secret-block-5d1e9a"


def invoke(args: list[str], key: str | None = None) -> Result:
    """Run `convo-etl ARGS` in this process (flows use the session's Prefect server)."""
    return CliRunner().invoke(app, args, env={"MISTRAL_API_KEY": key})


async def create_limit(name: str, limit: int, slots_per_second: float) -> None:
    """A global concurrency limit (a rate limit when it decays)."""
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(name, limit, slots_per_second)


async def flow_run_parameters() -> str:
    """Every flow run's parameters, as JSON."""
    async with get_client() as client:
        runs = await client.read_flow_runs()
    return json.dumps([run.parameters for run in runs])


@pytest.fixture
def keyed_emulator(
    prefect_harness: None, make_emulator: Callable[..., RunningEmulator]
) -> RunningEmulator:
    """An emulator that answers only KEY, whose key is saved in the Secret block `test-key`."""
    saved = invoke(["key-secret", "test-key"], key=KEY)
    assert saved.exit_code == 0, saved.stderr
    return make_emulator(conversations=12, seed=3, api_key=KEY)


def test_the_key_comes_from_the_secret_block_and_the_rate_from_the_limit(
    keyed_emulator: RunningEmulator, data_dir: Path
) -> None:
    asyncio.run(create_limit("test-export-rate", 10, 50))
    result = invoke(
        [
            "export",
            "--no-progress",
            *("--base-url", keyed_emulator.url, "--data-dir", str(data_dir)),
            *("--api-key-secret", "test-key", "--rate-limit-name", "test-export-rate"),
        ]
    )
    assert result.exit_code == 0, result.stderr
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from conversations").fetchall() == [(12,)]
    assert KEY not in result.stdout + result.stderr
    parameters = asyncio.run(flow_run_parameters())
    assert "test-key" in parameters
    assert KEY not in parameters


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--api-key-secret", "no-such-block"],
            "error: no Prefect Secret block named 'no-such-block': create it with "
            "`MISTRAL_API_KEY=... convo-etl key-secret no-such-block`",
        ),
        (
            ["--api-key-secret", "test-key", "--rate-limit-name", "no-such-limit"],
            "error: no global concurrency limit named 'no-such-limit': create it with "
            "`prefect gcl create no-such-limit --limit N --slot-decay-per-second R`",
        ),
        (
            ["--api-key-secret", "test-key", "--rate-limit-name", "test-no-decay"],
            "error: the global concurrency limit 'test-no-decay' has no slot decay, so it limits "
            "concurrency, not a rate: `prefect gcl update test-no-decay --slot-decay-per-second R`",
        ),
    ],
)
def test_a_missing_block_or_rate_limit_is_one_line(
    keyed_emulator: RunningEmulator, data_dir: Path, options: list[str], expected: str
) -> None:
    asyncio.run(create_limit("test-no-decay", 5, 0))
    result = invoke(
        [
            "export",
            "--no-progress",
            *("--base-url", keyed_emulator.url, "--data-dir", str(data_dir)),
            *options,
        ]
    )
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [expected]

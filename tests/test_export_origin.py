"""No mixing: an export into a data dir filled from another API refuses in one line, unless
--allow-mixed; the warehouse remembers its origins (redacted URLs, never a key)."""

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import duckdb
from conftest import CLI_KEY as KEY
from conftest import run_cli

from emulator.server import RunningEmulator


def export(
    url: str, data_dir: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    """`convo-etl export` from ``url`` into ``data_dir``."""
    args = ["export", "--base-url", url, "--data-dir", str(data_dir), "--no-progress"]
    return run_cli([*args, *extra], env, timeout=120)


def test_an_export_from_another_api_refuses_unless_allowed(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, cli_env: dict[str, str]
) -> None:
    first, other = make_emulator(conversations=3, seed=1), make_emulator(conversations=2, seed=2)
    assert export(first.url, data_dir, cli_env).returncode == 0
    assert export(first.url, data_dir, cli_env).returncode == 0

    refused = export(other.url, data_dir, cli_env)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error")]
    assert refused.returncode == 1
    assert errors == [
        f"error: this data dir holds exports from {first.url}, not {other.url}: use another "
        "--data-dir, or --allow-mixed to store both in one warehouse"
    ]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("select count(*) from conversations").fetchone() == (3,)

    assert export(other.url, data_dir, cli_env, "--allow-mixed").returncode == 0
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        origins = connection.execute(
            "select origin, emulator from warehouse_origin order by recorded_at"
        ).fetchall()
        stored = connection.execute("select count(*) from conversations").fetchone()
    assert origins == [(first.url, False), (other.url, False)]
    assert stored == (5,)
    assert KEY not in (data_dir / "warehouse.duckdb").read_bytes().decode("latin-1")


def test_credentials_in_the_base_url_reach_no_flow_parameter_row_or_line(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, cli_env: dict[str, str]
) -> None:
    emu = make_emulator(conversations=3, seed=4)
    host = emu.url.removeprefix("http://")
    url = f"http://proxy-user:s3cretpass@{host}/?token=t0kenvalue"
    done = export(url, data_dir, cli_env)
    assert done.returncode == 0, done.stderr

    async def parameters() -> str:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            runs = await client.read_flow_runs()
        return repr([run.parameters for run in runs])

    shown = asyncio.run(parameters()) + done.stdout + done.stderr
    stored = (data_dir / "warehouse.duckdb").read_bytes().decode("latin-1")
    for secret in ("s3cretpass", "t0kenvalue", "proxy-user"):
        assert secret not in shown
        assert secret not in stored
    assert emu.url in shown

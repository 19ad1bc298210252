"""`--max-body-mb` and `--timeout` reach the client: a body too large fails only its
conversation, with the reason, and the rest are stored."""

from collections.abc import Callable
from pathlib import Path

import duckdb
import httpx
from conftest import CLI_KEY as KEY
from conftest import run_cli

from emulator.server import RunningEmulator
from load.warehouse import open_warehouse


def test_a_body_over_max_body_mb_fails_only_its_conversation(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, cli_env: dict[str, str]
) -> None:
    emu = make_emulator(conversations=4, seed=3)
    started = httpx.post(
        f"{emu.url}/v1/conversations",
        json={"inputs": "x" * (3 * 2**20), "model": "mistral-small-latest", "stream": False},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert started.status_code == 200, started.text
    huge_id = started.json()["conversation_id"]
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--no-progress"]
    result = run_cli(
        [*args, "--max-body-mb", "1", "--max-failures", "1", "--timeout", "30"],
        cli_env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        stored = {row[0] for row in connection.execute("select id from conversations").fetchall()}
        failures = connection.execute(
            "select conversation_id, reason from export_failures"
        ).fetchall()
    assert huge_id not in stored and len(stored) == 4
    assert {cid for cid, _ in failures} == {huge_id}
    assert all("over the limit of 1,048,576" in reason for _, reason in failures)


def test_the_learned_pace_is_printed_and_stored(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path, cli_env: dict[str, str]
) -> None:
    emu = make_emulator(conversations=30, seed=4, rps=20)
    args = ["export", "--base-url", emu.url, "--data-dir", str(data_dir), "--no-progress"]
    result = run_cli([*args, "--concurrency", "16"], cli_env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "rate limited (429)" in result.stderr and "req/s" in result.stderr
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        ((limited, pace),) = connection.execute(
            "select rate_limited, pace_rps from export_runs"
        ).fetchall()
    assert limited > 0 and pace > 0


def test_an_old_warehouse_gains_the_pace_columns(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as connection:
        connection.execute(
            "create table export_runs (run_id varchar primary key, base_url varchar)"
        )
    open_warehouse(data_dir).close()
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        columns = [row[0] for row in connection.execute("describe export_runs").fetchall()]
    assert columns[-2:] == ["rate_limited", "pace_rps"]

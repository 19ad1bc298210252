"""Every command that writes the data dir, into a bad place: one line naming the path and the
OS's reason, exit 1, never a traceback. Real processes, real file systems."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from prefect.settings import PREFECT_API_URL

from emulator.server import RunningEmulator

CONVO_ETL = str(Path(sys.executable).parent / "convo-etl")
KEY = "test-key"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`convo-etl ARGS` to its end."""
    return run_cli([*args], env, timeout=180)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The `error:` lines, and any traceback's first line."""
    return [line for line in result.stderr.splitlines() if line.startswith(("error", "Traceback"))]


@pytest.fixture
def cli_env(prefect_harness: None, emulator: RunningEmulator) -> dict[str, str]:
    """A child's environment: this session's Prefect server, the emulator and a key."""
    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "MISTRAL_API_KEY": KEY,
        "MISTRAL_BASE_URL": emulator.url,
    }


def commands(prompts: Path) -> dict[str, list[str]]:
    """Each command that writes, with the arguments it needs."""
    return {
        "export": ["export", "--no-progress"],
        "replay": ["replay", str(prompts)],
        "demo": ["demo", "--conversations", "3"],
    }


@pytest.mark.parametrize("command", ["export", "replay", "demo"])
@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("file", "File exists"),
        ("file/under", "Not a directory"),
        ("/sys/convo-etl-test", "Operation not permitted"),
    ],
)
def test_a_data_dir_that_cannot_be_written_is_one_line(
    command: str, where: str, reason: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "file").write_text("in the way")
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("id,prompt,model\na,Hi?,mistral-small-latest\n", encoding="utf-8")
    target = where if where.startswith("/") else str(tmp_path / where)
    result = run([*commands(prompts)[command], "--data-dir", target], cli_env)
    assert result.returncode == 1
    assert error_lines(result) == [f"error: cannot write {target}: {reason}"]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only), unmounted at teardown."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_nothing_half_stored(
    full_disk: Path, cli_env: dict[str, str]
) -> None:
    result = run(["export", "--no-progress", "--data-dir", str(full_disk / "data")], cli_env)
    (line,) = error_lines(result)
    assert result.returncode == 1
    assert "No space left on device" in line and str(full_disk / "data") in line


def test_an_empty_query_is_one_line(tmp_path: Path) -> None:
    result = run(["sql", "", "--data-dir", str(tmp_path)], dict(os.environ))
    assert result.returncode == 2
    assert error_lines(result) == [
        "error: the query is empty: give one SQL statement, e.g. 'select 1'"
    ]

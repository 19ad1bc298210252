"""Every command that writes the data dir, into a bad place: one line naming the path and the
OS's reason, exit 1, never a traceback. Real processes, real file systems."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (root only: skipped otherwise, failed on CI)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the full-disk and read-only cases must run there")
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted at teardown."""
    with small_tmpfs(tmp_path / "small", "1m") as mount:
        yield mount


def fill(disk: Path) -> None:
    """Write a file until the disk has no space left."""
    with (disk / "filler").open("wb") as filler, pytest.raises(OSError, match="No space left"):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()


def read_only(disk: Path) -> None:
    """Remount a tmpfs read-only (root ignores permission bits, so chmod would not do)."""
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)


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


# A disk that refuses writes: full, or read-only.
SPOILED = pytest.mark.parametrize(
    ("spoil", "reason"),
    [(fill, "No space left on device"), (read_only, "Read-only file system")],
)


@pytest.fixture
def replayed(
    tmp_path: Path, cli_env: dict[str, str], make_emulator: Callable[..., RunningEmulator]
) -> Iterator[Path]:
    """A 16 MiB tmpfs whose data dir holds one replay run, `run` (sent to an emulator of its
    own: the session's serves read-only scenarios)."""
    with small_tmpfs(tmp_path / "disk", "16m") as disk:
        prompts = tmp_path / "prompts.csv"
        prompts.write_text("id,prompt,model\na,Hi?,mistral-small-latest\n", encoding="utf-8")
        args = ["replay", str(prompts), "--run-id", "run", "--data-dir", str(disk / "data")]
        args += ["--base-url", make_emulator(conversations=1).url]
        assert run(args, cli_env).returncode == 0
        yield disk


@SPOILED
def test_a_report_that_cannot_be_written_is_one_line_and_sql_still_reads(
    spoil: Callable[[Path], None], reason: str, replayed: Path, cli_env: dict[str, str]
) -> None:
    data = replayed / "data"
    spoil(replayed)
    report = run(["replay-report", "run", "--data-dir", str(data)], cli_env)
    assert report.returncode == 1
    assert error_lines(report) == [f"error: cannot write {data}/reports/replay-run.html: {reason}"]
    query = ["sql", "select status from replay_runs", "--data-dir", str(data), "--format", "csv"]
    result = run(query, cli_env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "status\ncompleted\n", "")


@pytest.mark.parametrize("where", ["file", "file/under"])
def test_a_data_dir_in_a_file_is_one_line_for_sql_and_replay_report(
    where: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "file").write_text("in the way")
    warehouse = tmp_path / where / "warehouse.duckdb"
    for args in (["sql", "select 1"], ["replay-report", "run"]):
        result = run([*args, "--data-dir", str(tmp_path / where)], cli_env)
        assert result.returncode == 1
        assert error_lines(result) == [f"error: cannot read {warehouse}: Not a directory"]


def test_a_report_written_under_a_file_is_one_line(replayed: Path, cli_env: dict[str, str]) -> None:
    (replayed / "file").write_text("in the way")
    output = replayed / "file" / "report.html"
    args = ["replay-report", "run", "--data-dir", str(replayed / "data"), "-o", str(output)]
    result = run(args, cli_env)
    assert result.returncode == 1
    assert error_lines(result) == [f"error: cannot write {output}: File exists"]


def schedule(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`convo-etl schedule` into ``data_dir``: it must refuse before it serves (hang check)."""
    return run_cli(["schedule", "--data-dir", str(data_dir)], env, timeout=90)


@pytest.mark.parametrize(
    ("where", "reason"),
    [("file", "File exists"), ("file/under", "Not a directory")],
)
def test_schedule_refuses_a_data_dir_in_a_file_before_serving(
    where: str, reason: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "file").write_text("in the way")
    result = schedule(tmp_path / where, cli_env)
    assert result.returncode == 1
    assert error_lines(result) == [f"error: cannot write {tmp_path / where}: {reason}"]


@SPOILED
def test_schedule_refuses_a_disk_it_cannot_write_before_serving(
    spoil: Callable[[Path], None], reason: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        (disk / "data").mkdir()
        spoil(disk)
        result = schedule(disk / "data", cli_env)
    assert result.returncode == 1
    assert error_lines(result) == [f"error: cannot write {disk / 'data'}: {reason}"]


def test_a_replay_whose_journal_cannot_be_written_stops_before_any_send(
    full_disk: Path,
    make_emulator: Callable[..., RunningEmulator],
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    """No prompt goes to the API unless its journal line is on disk."""
    fill(full_disk)
    emu = make_emulator(conversations=1)
    prompts = tmp_path / "prompts.csv"
    rows = "".join(f"r{n},Question {n}?,mistral-small-latest\n" for n in range(20))
    prompts.write_text("id,prompt,model\n" + rows, encoding="utf-8")
    data = tmp_path / "data"
    (data / "replay").mkdir(parents=True)
    (data / "replay" / "journal").symlink_to(full_disk)
    args = ["replay", str(prompts), "--run-id", "full", "--data-dir", str(data)]
    result = run([*args, "--base-url", emu.url, "--concurrency", "4"], cli_env)
    assert result.returncode == 1
    journal = data / "replay" / "journal" / "full.jsonl"
    assert error_lines(result) == [f"error: cannot write {journal}: No space left on device"]
    assert sum(emu.store.request_counts.values()) == 0
    query = ["sql", "select status, ok, errors from replay_runs", "--format", "csv"]
    assert run([*query, "--data-dir", str(data)], cli_env).stdout.splitlines()[1:] == ["failed,0,0"]

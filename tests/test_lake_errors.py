"""A lake that cannot be used stops the export in one line naming it; `convo-etl sql` reads the
lake (real S3 server on loopback: moto's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from lake_support import FAKE_AWS, create_bucket, require_lake_extra, s3_server
from typer.testing import CliRunner

from emulator.server import RunningEmulator
from flows.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One loopback S3 server for the module, or a skip (a failure under CI) without the extra."""
    require_lake_extra()
    with s3_server() as url:
        create_bucket(url, "there")
        yield url


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("missing bucket", "NoSuchBucket: The specified bucket does not exist"),
        ("unreachable endpoint", "error sending request"),
        ("no credentials", "no credentials found: set AWS_ACCESS_KEY_ID"),
    ],
)
def test_a_bad_lake_is_one_line_naming_it(
    problem: str, expected: str, make_emulator: Callable[..., RunningEmulator], endpoint: str
) -> None:
    emu = make_emulator(conversations=3, seed=1)
    env: dict[str, str | None] = {"MISTRAL_API_KEY": "test-key"}
    url = "s3://no-such-bucket/lake" if problem == "missing bucket" else "s3://there/lake"
    if problem == "unreachable endpoint":
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    if problem == "no credentials":
        env |= dict.fromkeys(FAKE_AWS)
    args = ["export", "--data-dir", url, "--base-url", emu.url, "--no-progress"]

    failed = CliRunner().invoke(app, args, env=env)

    assert failed.exit_code == 1
    assert failed.stderr.splitlines() == [failed.stderr.strip()]
    assert failed.stderr.startswith(f"error: cannot take the lease {url}/_leases/default.json: ")
    assert expected in failed.stderr
    assert "Traceback" not in failed.output
    assert FAKE_AWS["AWS_SECRET_ACCESS_KEY"] not in failed.output + failed.stderr


def test_sql_answers_from_the_lake_and_a_lake_without_tables_is_one_line(
    make_emulator: Callable[..., RunningEmulator], endpoint: str
) -> None:
    url = "s3://there/sql-lake"
    empty = CliRunner().invoke(app, ["sql", "select 1 from conversations", "--data-dir", url])
    assert empty.exit_code == 1
    assert empty.stderr.startswith(f"error: cannot open lake table {url}/conversations: ")
    assert empty.stderr.splitlines() == [empty.stderr.strip()]
    emu = make_emulator(conversations=5, seed=2)
    args = ["export", "--data-dir", url, "--base-url", emu.url, "--no-progress"]
    assert CliRunner().invoke(app, args, env={"MISTRAL_API_KEY": "test-key"}).exit_code == 0
    first = emu.store.conversations_newest_first()[0]["id"]
    query = (
        "select c.workspace, count(*), count(*) filter (where c.id = ?) "
        "from latest_conversations l join conversations c using (id) group by all"
    ).replace("?", f"'{first}'")

    answer = CliRunner().invoke(app, ["sql", query, "--data-dir", url, "--format", "csv"])

    assert answer.exit_code == 0, answer.stderr
    assert answer.stdout.splitlines()[1:] == ["default,5,1"]

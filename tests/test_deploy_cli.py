"""`convo-etl deploy` refusing in one line: no Prefect server, a bad cron, a pool that does not
exist. (tests/test_work_pool.py runs a deployment end to end.)"""

import os

import pytest
from conftest import run_cli


def stderr_lines(args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """The exit code and the non-blank stderr lines of `convo-etl ARGS`."""
    done = run_cli(args, env)
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()]


def test_without_a_prefect_server_deploy_says_how_to_start_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    assert stderr_lines(["deploy", "--pool", "nightly"], env) == (
        1,
        [
            "error: deploy needs a running Prefect server: start one with `prefect server start` "
            "and set PREFECT_API_URL=http://127.0.0.1:4200/api in this shell"
        ],
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--cron", "every night"],
            (2, ['error: Invalid cron string: "every night"']),
        ),
        (
            [],
            (
                1,
                [
                    "error: no work pool named 'no-such-pool': create it with "
                    "`prefect work-pool create no-such-pool --type process`"
                ],
            ),
        ),
    ],
)
def test_deploy_refuses_in_one_line(
    cli_env: dict[str, str], args: list[str], expected: tuple[int, list[str]]
) -> None:
    assert stderr_lines(["deploy", "--pool", "no-such-pool", *args], cli_env) == expected

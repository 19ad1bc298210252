"""Each `convo-etl` command's module is imported when that command runs: an export does not load
polars, deltalake, obstore or the emulator's server, and every command is still listed."""

import subprocess
import sys

from conftest import run_cli

from flows.cli import COMMANDS

NOT_FOR_AN_EXPORT = ("polars", "deltalake", "obstore", "emulator.server")


def test_help_lists_every_command() -> None:
    done = run_cli(["--help"], env={"COLUMNS": "200", "PATH": ""})
    assert done.returncode == 0, done.stderr
    listed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in COMMANDS] == list(COMMANDS)


def test_every_command_answers_its_help() -> None:
    for name in COMMANDS:
        done = run_cli([name, "--help"], env={"COLUMNS": "200", "PATH": ""})
        assert done.returncode == 0, (name, done.stderr)
        assert f"convo-etl {name}" in done.stdout


def test_the_export_command_loads_only_what_an_export_runs() -> None:
    code = (
        "import sys\n"
        "from flows.cli import app\n"
        "from typer.main import get_command\n"
        "import typer._click as click\n"
        "group = get_command(app)\n"
        "group.get_command(click.Context(group), 'export')\n"
        f"print([m for m in {NOT_FOR_AN_EXPORT!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout

"""`python -m emulator`: the `convo-etl emulator` command without the other sub-commands."""

import typer

from emulator.cli import emulator_command

typer.run(emulator_command)

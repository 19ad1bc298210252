"""The `convo-etl` console script: the temporary Prefect server starts before the imports.

A command that runs flows without a configured PREFECT_API_URL needs a temporary server, which
takes seconds to come up; so do the command's own imports (Prefect, DuckDB, Arrow, polars).
Started first, the server comes up while they load instead of after them. Everything else is
`flows.cli.app`'s.
"""

import os
import sys

from flows import prefect_server

# The commands that run flows (the others never start a server).
FLOW_COMMANDS = frozenset({"export", "replay", "demo"})
_HELP = frozenset({"--help", "-h"})


def needs_temporary_server(args: list[str]) -> bool:
    """Whether ``args`` run flows with no Prefect API set in the environment (a profile may
    still set one: `flows.prefect_api` then stops the early server)."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    return (
        command in FLOW_COMMANDS
        and not _HELP.intersection(args)
        and not os.environ.get("PREFECT_API_URL")
    )


def main() -> None:
    """Start the temporary server if the command will need one, then run the command."""
    if needs_temporary_server(sys.argv[1:]):
        prefect_server.start_early()
    from flows.cli import app

    app()

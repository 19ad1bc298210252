"""The one way a command fails: raise CliError; the app prints `error: <message>` and exits.

Exit codes: 1 a failure, 2 bad input, 3 a failed gate, 130 interrupted (SIGINT), 143 terminated
(SIGTERM).
"""

import sys
from typing import Any

import typer
from prefect.exceptions import TerminationSignal
from typer._click import exceptions as click_errors  # typer vendors click; these are its classes
from typer.core import TyperGroup

from flows import signals
from load.storage_errors import StorageError, storage_error

FAILED = 1
BAD_INPUT = 2
GATE_FAILED = 3
INTERRUPTED = 130
TERMINATED = 143


class CliError(Exception):
    """A command stopped for a reason the user can act on; ``message`` says it in a line."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def os_error_message(error: OSError) -> str:
    """An OS error as one line naming the path and the OS's reason (StorageError says both)."""
    if isinstance(error, StorageError) or error.filename is None:
        return str(error)
    return str(storage_error(error.filename, error))


def print_error(message: str) -> None:
    """``error: <message>`` on stderr; a message listing several problems gives one line each."""
    for line in message.splitlines() or [""]:
        typer.echo(f"error: {line}", err=True)


class CliGroup(TyperGroup):
    """The app's command group: where every command's CliError and every bad option end."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except CliError as error:
            print_error(error.message)
            sys.exit(error.exit_code)
        except OSError as error:  # a disk, permission or path problem, wherever it surfaced
            print_error(os_error_message(error))
            sys.exit(FAILED)
        except click_errors.NoArgsIsHelpError as error:
            error.show()
            sys.exit(BAD_INPUT)
        except click_errors.ClickException as error:
            print_error(error.format_message())
            sys.exit(BAD_INPUT if isinstance(error, click_errors.UsageError) else FAILED)
        except (typer.Abort, KeyboardInterrupt):
            code = INTERRUPTED
        except TerminationSignal:  # Prefect's SIGTERM handler, where flows.signals is not set
            print_error("terminated")
            sys.exit(TERMINATED)
        if code == INTERRUPTED:  # typer turns a KeyboardInterrupt into this exit code
            print_error("terminated" if signals.terminated() else "interrupted")
            sys.exit(TERMINATED if signals.terminated() else INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)

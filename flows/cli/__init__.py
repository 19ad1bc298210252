"""The `convo-etl` command: one sub-command per job, each in its own module of this package.

Every command fails the same way (flows.cli.errors) and shares its options (flows.cli.options).
A command's module is imported only when it runs (flows.cli.lazy_group).
"""

import logging
import os

import pyarrow as pa
import typer
from prefect.logging.handlers import PrefectConsoleHandler
from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings

from flows import signals
from flows.cli.lazy_group import LazyGroup

# Prefect: offline and quiet on the console by default (its logs still reach the Prefect API).
# Set these in the environment to override.
_ANALYTICS_ENV = "PREFECT_SERVER_ANALYTICS_ENABLED"
_CONSOLE_LEVEL_ENV = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"

# Each command's function, in the order `--help` lists them.
COMMANDS = {
    "export": "flows.cli.export:export_command",
    "sql": "flows.cli.sql:sql_command",
    "schedule": "flows.cli.export:schedule_command",
    "deploy": "flows.cli.deploy:deploy_command",
    "key-secret": "flows.cli.deploy:key_secret_command",
    "demo": "flows.cli.demo:demo_command",
    "replay": "flows.cli.replay:replay_command",
    "replay-report": "flows.cli.replay_report:replay_report_command",
    "runs": "flows.cli.list_runs:runs_command",
    "grade": "flows.cli.grade:grade_command",
    "replay-compare": "flows.cli.replay_compare:replay_compare_command",
    "emulator": "emulator.cli:emulator_command",
}


class ConvoEtlGroup(LazyGroup):
    """The app's commands, each imported when it runs."""

    lazy_commands = COMMANDS


app = typer.Typer(
    name="convo-etl",
    help=(
        "Export, analyse and replay Mistral AI conversations (Prefect, Parquet, DuckDB). "
        "The API key is read from MISTRAL_API_KEY, never from a flag."
    ),
    cls=ConvoEtlGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _quiet_prefect_console() -> None:
    """Raise Prefect's console handlers to CRITICAL (Prefect set them up when imported)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.CRITICAL)


@app.callback()
def entry(ctx: typer.Context) -> None:
    """Before any command: SIGTERM unwinds, Prefect is quiet, Arrow uses the system allocator."""
    signals.install()
    if _ANALYTICS_ENV not in os.environ:
        ctx.with_resource(temporary_settings(updates={PREFECT_SERVER_ANALYTICS_ENABLED: False}))
    if _CONSOLE_LEVEL_ENV not in os.environ:
        _quiet_prefect_console()
    # Arrow's default jemalloc/mimalloc pool keeps freed batches cached; the system pool hands
    # them back, which keeps an export's peak memory bounded by its batch size (measured: 485 vs
    # 530 MB).
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())

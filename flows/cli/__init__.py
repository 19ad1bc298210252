"""The `convo-etl` command: one sub-command per job, each in its own module of this package.

Every command fails the same way (flows.cli.errors) and shares its options (flows.cli.options).
"""

import logging
import os

import pyarrow as pa
import typer
from prefect.logging.handlers import PrefectConsoleHandler
from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings

from emulator.cli import emulator_command
from flows import signals
from flows.cli.demo import demo_command
from flows.cli.deploy import deploy_command, key_secret_command
from flows.cli.errors import CliGroup
from flows.cli.export import export_command, schedule_command
from flows.cli.grade import grade_command
from flows.cli.list_runs import runs_command
from flows.cli.replay import replay_command
from flows.cli.replay_compare import replay_compare_command
from flows.cli.replay_report import replay_report_command
from flows.cli.sql import sql_command

# Prefect: offline and quiet on the console by default (its logs still reach the Prefect API).
# Set these in the environment to override.
_ANALYTICS_ENV = "PREFECT_SERVER_ANALYTICS_ENABLED"
_CONSOLE_LEVEL_ENV = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"

app = typer.Typer(
    name="convo-etl",
    help=(
        "Export, analyse and replay Mistral AI conversations (Prefect, Parquet, DuckDB). "
        "The API key is read from MISTRAL_API_KEY, never from a flag."
    ),
    cls=CliGroup,
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


app.command("export")(export_command)
app.command("sql")(sql_command)
app.command("schedule")(schedule_command)
app.command("deploy")(deploy_command)
app.command("key-secret")(key_secret_command)
app.command("demo")(demo_command)
app.command("replay")(replay_command)
app.command("replay-report")(replay_report_command)
app.command("runs")(runs_command)
app.command("grade")(grade_command)
app.command("replay-compare")(replay_compare_command)
app.command("emulator")(emulator_command)

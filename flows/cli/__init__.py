"""The `convo-etl` command: one sub-command per job, each defined next to the code it runs."""

import os

# Prefect and Arrow read these when first imported, so they are set before any sub-command module
# loads. Prefect: offline and quiet on the console by default (its logs still reach the Prefect
# API). Set them in the environment to override.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
# Arrow's default jemalloc pool keeps freed batches cached; the system pool hands them back, which
# keeps an export's peak memory bounded by its batch size (measured: 485 vs 530 MB).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import typer

from emulator.cli import emulator_command
from flows.cli.export import (
    demo_command,
    export_command,
    schedule_command,
    sql_command,
)
from flows.cli.replay import replay_command
from flows.cli.replay_report import replay_report_command

app = typer.Typer(
    name="convo-etl",
    help="Export, analyse and replay Mistral AI conversations (Prefect, Parquet, DuckDB).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("export")(export_command)
app.command("sql")(sql_command)
app.command("schedule")(schedule_command)
app.command("demo")(demo_command)
app.command("replay")(replay_command)
app.command("replay-report")(replay_report_command)
app.command("emulator")(emulator_command)

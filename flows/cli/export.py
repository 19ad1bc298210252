"""Export sub-commands: `export`, `sql`, `schedule` and `demo`."""

import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from prefect.client.schemas.schedules import CronSchedule
from pydantic import ValidationError
from rich.console import Console

from extract.settings import ApiSettings
from flows.export.demo import DemoRefused, run_demo
from flows.export.flow import export_conversations
from flows.export.query import QueryFailed, QueryFormat, run_query
from flows.export.run import ExportFailed, run_export
from flows.prefect_api import PrefectServerFailed, prefect_api, prefect_api_url

NO_KEY_MESSAGE = (
    "MISTRAL_API_KEY is not set: export MISTRAL_API_KEY=<your key> (from console.mistral.ai) "
    "to export your conversations, or run `convo-etl demo` to try it on a local emulator"
)
NO_SERVER_MESSAGE = (
    "schedule needs a running Prefect server: start one with `prefect server start` and set "
    "PREFECT_API_URL=http://127.0.0.1:4200/api in this shell"
)

DataDir = Annotated[
    Path,
    typer.Option(
        envvar="CONVO_ETL_DATA_DIR",
        help="Where parquet/ and warehouse.duckdb live (default: $CONVO_ETL_DATA_DIR or ./data).",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(help="API base URL (default: $MISTRAL_BASE_URL or https://api.mistral.ai)."),
]
Full = Annotated[bool, typer.Option("--full", help="Fetch every conversation, changed or not.")]
Concurrency = Annotated[int, typer.Option(min=1, help="Requests in flight at once.")]
Rps = Annotated[float | None, typer.Option(min=0.01, help="Requests per second at most.")]
BatchSize = Annotated[
    int, typer.Option(min=1, help="Conversations per batch (one Prefect task each).")
]
PageSize = Annotated[int, typer.Option(min=1, help="Conversations per list page.")]
MaxFailures = Annotated[
    int,
    typer.Option(min=0, help="Fail the run when more conversations than this cannot be fetched."),
]

stderr = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line on stderr and exit non-zero."""
    stderr.print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def validation_message(error: ValidationError) -> str:
    """The first problem pydantic found, as one line."""
    return str(error.errors()[0]["msg"]).removeprefix("Value error, ")


def api_settings(base_url: str | None) -> ApiSettings:
    """API settings from the environment and --base-url, or a one-line error."""
    try:
        return ApiSettings(base_url=base_url) if base_url else ApiSettings()
    except ValidationError as error:
        fail(validation_message(error))


def export_command(
    data_dir: DataDir = Path("data"),
    base_url: BaseUrl = None,
    full: Full = False,
    conversation_id: Annotated[
        list[str] | None,
        typer.Option("--conversation-id", help="Fetch only this conversation (repeatable)."),
    ] = None,
    concurrency: Concurrency = 16,
    rps: Rps = None,
    batch_size: BatchSize = 250,
    page_size: PageSize = 100,
    max_failures: MaxFailures = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Copy every conversation the key can see into Parquet and DuckDB (only what changed)."""
    settings = api_settings(base_url)
    if settings.api_key is None:
        fail(NO_KEY_MESSAGE)
    started = time.perf_counter()
    try:
        with prefect_api(stderr):
            run_export(
                {
                    "data_dir": str(data_dir),
                    "base_url": settings.base_url,
                    "full": full,
                    "conversation_ids": conversation_id or None,
                    "concurrency": concurrency,
                    "rps": rps,
                    "batch_size": batch_size,
                    "page_size": page_size,
                    "max_failures": max_failures,
                    "show_progress": progress,
                },
                stderr,
                started=started,
            )
    except (ExportFailed, PrefectServerFailed) as error:
        fail(str(error))


def sql_command(
    query: Annotated[str, typer.Argument(help="The SQL to run (read-only).")],
    data_dir: DataDir = Path("data"),
    output: Annotated[
        QueryFormat,
        typer.Option("--format", help="table (long values cropped), csv or json."),
    ] = QueryFormat.TABLE,
) -> None:
    """Run one read-only SQL query against the warehouse and print the result."""
    try:
        run_query(data_dir, query, output, Console())
    except QueryFailed as error:
        fail(str(error))


def schedule_command(
    cron: Annotated[str, typer.Option(help="When to run, as a cron expression (UTC).")] = (
        "0 2 * * *"
    ),
    name: Annotated[str, typer.Option(help="The deployment's name.")] = "nightly-export",
    data_dir: DataDir = Path("data"),
    base_url: BaseUrl = None,
    concurrency: Concurrency = 16,
    rps: Rps = None,
    batch_size: BatchSize = 250,
    max_failures: MaxFailures = 0,
) -> None:
    """Serve the export as a Prefect deployment that runs on a cron schedule (needs a server)."""
    try:
        CronSchedule(cron=cron)
    except ValidationError as error:
        fail(validation_message(error))
    if prefect_api_url() is None:
        fail(NO_SERVER_MESSAGE)
    settings = api_settings(base_url)
    if settings.api_key is None:
        fail(NO_KEY_MESSAGE)
    stderr.print(
        f"serving deployment export-conversations/{name} on cron {cron!r} at {prefect_api_url()}"
        " (Ctrl-C stops it)",
        highlight=False,
    )
    export_conversations.serve(
        name=name,
        cron=cron,
        parameters={
            "data_dir": str(data_dir.resolve()),
            "base_url": settings.base_url,
            "concurrency": concurrency,
            "rps": rps,
            "batch_size": batch_size,
            "max_failures": max_failures,
        },
        print_starting_message=False,
    )


def demo_command(
    conversations: Annotated[
        int, typer.Option(min=1, help="Synthetic conversations the emulator serves.")
    ] = 2000,
    changes: Annotated[
        int, typer.Option(min=0, help="Conversations to change before the second run.")
    ] = 25,
    data_dir: DataDir = Path("data"),
) -> None:
    """Export from a local emulator twice (full, then incremental) and show the analytics."""
    try:
        run_demo(conversations, changes, data_dir, Console())
    except (DemoRefused, ExportFailed, PrefectServerFailed, QueryFailed) as error:
        fail(str(error))

"""Export sub-commands: `export` and `schedule`."""

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from prefect.client.schemas.schedules import CronSchedule
from prefect.runner import Runner
from pydantic import ValidationError
from rich.console import Console

from extract.urls import redacted_url
from flows import signals
from flows.cli.errors import BAD_INPUT, CliError
from flows.cli.options import (
    ApiKeySecret,
    BaseUrl,
    Concurrency,
    MaxBodyMb,
    RateLimitName,
    Rps,
    StoreDir,
    StreamIdleTimeout,
    StreamTimeout,
    Timeout,
    Workspace,
    client_limits,
    command_settings,
    deployed_data_dir,
    validation_message,
)
from flows.export.flow import export_conversations
from flows.export.run import ExportFailed, run_export
from flows.prefect_api import PrefectServerFailed, check_answers, prefect_api_url
from flows.settings import DEFAULT_DATA_DIR, DEFAULT_WORKSPACE, Settings, checked_workspace
from load.lake.location import is_lake_url
from load.writable import check_writable

NO_KEY_MESSAGE = (
    "MISTRAL_API_KEY is not set: export MISTRAL_API_KEY=<your key> (from console.mistral.ai) "
    "to export your conversations, or run `convo-etl demo` to try it on a local emulator"
)
NO_SERVER_MESSAGE = (
    "schedule needs a running Prefect server: start one with `prefect server start` and set "
    "PREFECT_API_URL=http://127.0.0.1:4200/api in this shell"
)

Cron = Annotated[str, typer.Option(help="When to run, as a cron expression (UTC).")]
Full = Annotated[bool, typer.Option("--full", help="Fetch every conversation, changed or not.")]
BatchSize = Annotated[
    int, typer.Option(min=1, help="Conversations per batch (one Prefect task each).")
]
PageSize = Annotated[int, typer.Option(min=1, help="Conversations per list page.")]
MaxFailures = Annotated[
    int,
    typer.Option(min=0, help="Fail the run when more conversations than this cannot be fetched."),
]
PurgeDeleted = Annotated[
    bool,
    typer.Option(
        "--purge-deleted",
        help="Remove the conversations marked deleted from DuckDB and the Parquet parts.",
    ),
]

stderr = Console(stderr=True)


def workspace_name(workspace: str) -> str:
    """The --workspace value, or a CliError (bad input) saying what a name may hold."""
    try:
        return checked_workspace(workspace)
    except ValueError as error:
        raise CliError(str(error), BAD_INPUT) from None


def keyed_settings(data_dir: str, base_url: str | None) -> Settings:
    """The command's settings, which must hold an API key."""
    settings = command_settings(Path(data_dir), base_url)
    if settings.api.api_key is None:
        raise CliError(NO_KEY_MESSAGE, BAD_INPUT)
    return settings


def export_command(
    data_dir: StoreDir = str(DEFAULT_DATA_DIR),
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
    allow_mixed: Annotated[
        bool,
        typer.Option(help="Export into a data dir filled from another API (mixing both)."),
    ] = False,
    purge_deleted: PurgeDeleted = False,
    timeout: Timeout = 120.0,
    stream_idle_timeout: StreamIdleTimeout = 300.0,
    stream_timeout: StreamTimeout = 1800.0,
    max_body_mb: MaxBodyMb = 512,
    workspace: Workspace = DEFAULT_WORKSPACE,
    api_key_secret: ApiKeySecret = None,
    rate_limit_name: RateLimitName = None,
) -> None:
    """Copy every conversation the key can see into Parquet and DuckDB (only what changed).

    The API key is read from MISTRAL_API_KEY, or from the Secret block --api-key-secret names.
    """
    workspace = workspace_name(workspace)
    if api_key_secret is None:
        settings = keyed_settings(data_dir, base_url)
    else:
        settings = command_settings(data_dir, base_url)
    started = time.perf_counter()
    try:
        run_export(
            {
                "data_dir": data_dir if is_lake_url(data_dir) else str(settings.data_dir),
                "base_url": settings.api.base_url,
                "full": full,
                "conversation_ids": conversation_id or None,
                "concurrency": concurrency,
                "rps": rps,
                "batch_size": batch_size,
                "page_size": page_size,
                "max_failures": max_failures,
                "show_progress": progress,
                "purge_deleted": purge_deleted,
                "allow_mixed": allow_mixed,
                "workspace": workspace,
                "api_key_secret": api_key_secret,
                "rate_limit_name": rate_limit_name,
                "limits": client_limits(timeout, stream_idle_timeout, stream_timeout, max_body_mb),
            },
            stderr,
            started=started,
            start_prefect=True,
        )
    except (ExportFailed, PrefectServerFailed) as error:
        raise CliError(str(error)) from None


def schedule_command(
    cron: Cron = "0 2 * * *",
    name: Annotated[str, typer.Option(help="The deployment's name.")] = "nightly-export",
    data_dir: StoreDir = str(DEFAULT_DATA_DIR),
    base_url: BaseUrl = None,
    concurrency: Concurrency = 16,
    rps: Rps = None,
    batch_size: BatchSize = 250,
    max_failures: MaxFailures = 0,
    purge_deleted: PurgeDeleted = False,
    timeout: Timeout = 120.0,
    stream_idle_timeout: StreamIdleTimeout = 300.0,
    stream_timeout: StreamTimeout = 1800.0,
    max_body_mb: MaxBodyMb = 512,
    workspace: Workspace = DEFAULT_WORKSPACE,
) -> None:
    """Serve the export as a Prefect deployment that runs on a cron schedule (needs a server).

    The API key is read from MISTRAL_API_KEY by the serving process, never stored by Prefect.
    """
    try:
        CronSchedule(cron=cron)
    except ValidationError as error:
        raise CliError(validation_message(error), BAD_INPUT) from None
    workspace = workspace_name(workspace)
    api_url = prefect_api_url()
    if api_url is None:
        raise CliError(NO_SERVER_MESSAGE)
    settings = keyed_settings(data_dir, base_url)
    check_writable(settings.data_dir)
    try:
        check_answers(api_url)
    except PrefectServerFailed as error:
        raise CliError(str(error)) from None
    runner = Runner(name=name)
    runner.add_flow(
        export_conversations,
        name=name,
        cron=cron,
        parameters={
            "data_dir": deployed_data_dir(data_dir),
            "base_url": settings.api.base_url,
            "concurrency": concurrency,
            "rps": rps,
            "batch_size": batch_size,
            "max_failures": max_failures,
            "purge_deleted": purge_deleted,
            "workspace": workspace,
            "limits": client_limits(
                timeout, stream_idle_timeout, stream_timeout, max_body_mb
            ).model_dump(),
        },
    )
    stderr.print(
        f"serving deployment export-conversations/{name} on cron {cron!r} at "
        f"{redacted_url(api_url)} (Ctrl-C stops it)",
        highlight=False,
    )
    asyncio.run(serve_until_stopped(runner))


async def serve_until_stopped(runner: Runner) -> None:
    """Serve until Ctrl-C or SIGTERM, which both end here as an interruption (exit 130 or 143).

    Prefect's runner installs a SIGTERM handler of its own that stops serving quietly (exit 0);
    ours goes back in once the runner has started, so that SIGTERM stops it like Ctrl-C.
    """
    serving = asyncio.create_task(runner.start())
    await asyncio.sleep(0)  # the runner installs its SIGTERM handler before its first await
    signals.install()
    await serving

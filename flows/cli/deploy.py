"""`deploy` (the export as a deployment on a work pool) and `key-secret` (a key in a Secret block).

Both need a running Prefect server (PREFECT_API_URL); the workers of the pool run the flows.
"""

from pathlib import Path
from typing import Annotated

import typer
from prefect.client.schemas.schedules import CronSchedule
from pydantic import ValidationError
from rich.console import Console

from extract.urls import redacted_url
from flows.cli.errors import BAD_INPUT, CliError
from flows.cli.export import NO_KEY_MESSAGE, BatchSize, Cron, MaxFailures, workspace_name
from flows.cli.options import (
    ApiKeySecret,
    BaseUrl,
    Concurrency,
    RateLimitName,
    Rps,
    StoreDir,
    Workspace,
    command_settings,
    deployed_data_dir,
    validation_message,
)
from flows.deploy import PROJECT_DIR, DeployFailed, deploy_export, save_key_secret
from flows.prefect_api import PrefectServerFailed, check_answers, prefect_api_url
from flows.settings import DEFAULT_DATA_DIR, DEFAULT_WORKSPACE

NO_SERVER_MESSAGE = (
    "{command} needs a running Prefect server: start one with `prefect server start` and set "
    "PREFECT_API_URL=http://127.0.0.1:4200/api in this shell"
)

stderr = Console(stderr=True)


def _running_server(command: str) -> str:
    """The configured Prefect API's URL, once it answers; else a CliError saying what to do."""
    api_url = prefect_api_url()
    if api_url is None:
        raise CliError(NO_SERVER_MESSAGE.format(command=command))
    try:
        check_answers(api_url)
    except PrefectServerFailed as error:
        raise CliError(str(error)) from None
    return api_url


def deploy_command(
    pool: Annotated[str, typer.Option("--pool", help="The work pool whose workers run it.")],
    name: Annotated[
        str | None,
        typer.Option(help="The deployment's name (default: export-WORKSPACE).", show_default=False),
    ] = None,
    cron: Cron = "0 2 * * *",
    data_dir: StoreDir = str(DEFAULT_DATA_DIR),
    base_url: BaseUrl = None,
    workspace: Workspace = DEFAULT_WORKSPACE,
    api_key_secret: ApiKeySecret = None,
    rate_limit_name: RateLimitName = None,
    concurrency: Concurrency = 16,
    rps: Rps = None,
    batch_size: BatchSize = 250,
    max_failures: MaxFailures = 0,
    source: Annotated[
        Path,
        typer.Option(help="The project's directory, as the workers see it (default: this one)."),
    ] = PROJECT_DIR,
) -> None:
    """Create or update a deployment of the export on a work pool, run on a cron schedule.

    Each run reads its key from the Secret block --api-key-secret names (else the worker's
    MISTRAL_API_KEY); deploy once per workspace.
    """
    try:
        CronSchedule(cron=cron)
    except ValidationError as error:
        raise CliError(validation_message(error), BAD_INPUT) from None
    workspace = workspace_name(workspace)
    settings = command_settings(Path(data_dir), base_url)
    api_url = _running_server("deploy")
    name = name or f"export-{workspace}"
    parameters = {
        "data_dir": deployed_data_dir(data_dir),
        "base_url": settings.api.base_url,
        "workspace": workspace,
        "api_key_secret": api_key_secret,
        "rate_limit_name": rate_limit_name,
        "concurrency": concurrency,
        "rps": rps,
        "batch_size": batch_size,
        "max_failures": max_failures,
    }
    try:
        deploy_export(name, pool, cron, parameters, source.resolve())
    except DeployFailed as error:
        raise CliError(str(error)) from None
    stderr.print(
        f"deployment export-conversations/{name} runs on pool {pool!r} at cron {cron!r} "
        f"({redacted_url(api_url)}); start its workers with `prefect worker start --pool {pool}`",
        highlight=False,
    )


def key_secret_command(
    name: Annotated[str, typer.Argument(help="The Secret block's name.")],
) -> None:
    """Store MISTRAL_API_KEY in a Prefect Secret block, for `deploy --api-key-secret NAME`."""
    settings = command_settings(DEFAULT_DATA_DIR, None)
    if settings.api.api_key is None:
        raise CliError(NO_KEY_MESSAGE, BAD_INPUT)
    _running_server("key-secret")
    save_key_secret(name, settings.api.api_key.get_secret_value())
    stderr.print(f"saved the key in the Prefect Secret block {name!r}", highlight=False)

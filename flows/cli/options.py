"""The options several commands share, declared once so they read the same environment variables.

Each command picks its own default for Concurrency; the others default alike everywhere.
"""

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from flows.cli.errors import BAD_INPUT, CliError
from flows.settings import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    ClientLimits,
    Settings,
    load_settings,
)
from load.lake.location import is_lake_url

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help=f"Where parquet/, warehouse.duckdb and reports/ live (default: ./{DEFAULT_DATA_DIR}).",
    ),
]
# export, schedule and sql also take a lake URL (s3://bucket/prefix, gs://, az://): text, since
# a Path would fold the scheme's '//'.
StoreDir = Annotated[
    str,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help=f"Where parquet/ and warehouse.duckdb live (default: ./{DEFAULT_DATA_DIR}), or a "
        "lake of Delta tables: s3://bucket/prefix, gs://..., az://... (credentials from the "
        "environment).",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="MISTRAL_BASE_URL",
        help="API base URL (default: https://api.mistral.ai).",
    ),
]
Workspace = Annotated[
    str,
    typer.Option(
        "--workspace",
        envvar="CONVO_ETL_WORKSPACE",
        help="Name of the API workspace (key) this run exports: a column and key of every "
        "table, so several workspaces share one data dir (letters, digits, '.', '_', '-').",
    ),
]
ApiKeySecret = Annotated[
    str | None,
    typer.Option(
        "--api-key-secret",
        show_default=False,
        help="Name of the Prefect Secret block holding this workspace's API key (read by each "
        "run; default: MISTRAL_API_KEY).",
    ),
]
RateLimitName = Annotated[
    str | None,
    typer.Option(
        "--rate-limit-name",
        show_default=False,
        help="Name of a Prefect global concurrency limit with slot decay: every run on the same "
        "key shares its rate (requests per second = its slot decay per second).",
    ),
]
Concurrency = Annotated[int, typer.Option("--concurrency", min=1, help="Requests in flight.")]
Rps = Annotated[float | None, typer.Option("--rps", min=0.001, help="Requests per second at most.")]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.001,
        help="Seconds a request may take (a POST that times out is not resent: its outcome is "
        "unknown).",
    ),
]
StreamIdleTimeout = Annotated[
    float,
    typer.Option("--stream-idle-timeout", min=0.001, help="Seconds a stream may stay silent."),
]
StreamTimeout = Annotated[
    float, typer.Option("--stream-timeout", min=0.001, help="Seconds a whole stream may take.")
]
MaxBodyMb = Annotated[
    int,
    typer.Option(
        "--max-body-mb", min=1, help="Largest response body, in MiB (a larger one fails its item)."
    ),
]


def client_limits(
    timeout: float, stream_idle_timeout: float, stream_timeout: float, max_body_mb: int
) -> ClientLimits:
    """The client limits a command's options ask for."""
    return ClientLimits(
        request_timeout=timeout,
        stream_idle_timeout=stream_idle_timeout,
        stream_timeout=stream_timeout,
        max_body_mb=max_body_mb,
    )


def validation_message(error: ValidationError) -> str:
    """The first problem pydantic found, as one line."""
    return str(error.errors()[0]["msg"]).removeprefix("Value error, ")


def command_settings(data_dir: Path, base_url: str | None) -> Settings:
    """The settings a command runs with, or a CliError (bad input) naming what is wrong."""
    try:
        return load_settings(data_dir, base_url)
    except ValidationError as error:
        raise CliError(validation_message(error), BAD_INPUT) from None


def deployed_data_dir(data_dir: str) -> str:
    """The data dir as a deployment stores it: a lake URL as given, a local path made absolute
    (its runs start in other working directories)."""
    return data_dir if is_lake_url(data_dir) else str(Path(data_dir).resolve())

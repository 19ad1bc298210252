"""`convo-etl replay PROMPTS.csv`: validate the prompt set, run the replay flow, print a summary."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from extract.settings import ApiSettings
from flows.prefect_api import PrefectServerFailed, prefect_api
from flows.replay.flow import MISSING_KEY_MESSAGE, replay_flow
from flows.replay.run_id import check_run_id, new_run_id
from flows.replay.summary import print_summary
from load.warehouse import WarehouseLocked
from transform.prompts import PromptSetInvalid, parse_prompts

DEFAULT_DATA_DIR = "data"
INVALID_INPUT_EXIT = 2
ROWS_FAILED_EXIT = 1


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)
    return typer.Exit(INVALID_INPUT_EXIT)


def _api_settings(base_url: str | None) -> ApiSettings:
    """API settings from the environment and --base-url; without a key, say how to get going."""
    try:
        settings = ApiSettings(base_url=base_url) if base_url else ApiSettings()
    except ValidationError as exc:
        raise _fail(f"invalid API settings: {exc.errors()[0]['msg']}") from None
    if (
        settings.api_key is None
        and settings.base_url == ApiSettings.model_fields["base_url"].default
    ):
        raise _fail(MISSING_KEY_MESSAGE)
    return settings


def replay_command(
    prompts: Annotated[Path, typer.Argument(help="Prompt CSV (see data/prompts/README.md).")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="CONVO_ETL_DATA_DIR", help="Where Parquet and DuckDB go (default ./data)."
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(envvar="MISTRAL_BASE_URL", help="API base URL (default the Mistral API)."),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="Name of the run (default: a new id); reuse it to resume.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model for starting rows that name none.")
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option(help="Agent for starting rows that name none.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    rps: Annotated[
        float | None, typer.Option(min=0.001, help="Requests per second at most.")
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Send every row N times.")] = 1,
    stream: Annotated[bool, typer.Option(help="Use the streaming endpoints.")] = True,
) -> None:
    """Replay a prompt CSV against a model or agent; store results and SSE events."""
    try:
        data = prompts.read_bytes()
    except OSError as exc:
        raise _fail(f"{prompts}: cannot read the file: {exc.strerror or exc}") from None
    try:
        parse_prompts(data, prompts.name, model, agent_id)
        run_id = check_run_id(run_id) if run_id else new_run_id()
    except PromptSetInvalid as exc:
        raise _fail("\n".join(exc.errors)) from None
    except ValueError as exc:
        raise _fail(f"--run-id: {exc}") from None
    settings = _api_settings(base_url)
    root = data_dir or Path(DEFAULT_DATA_DIR)
    root.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, highlight=False)
    console.print(f"run id: {run_id}")
    try:
        with prefect_api(console):
            summary = asyncio.run(
                replay_flow(
                    prompts_path=str(prompts),
                    data_dir=str(root),
                    base_url=settings.base_url,
                    run_id=run_id,
                    concurrency=concurrency,
                    rps=rps,
                    repeat=repeat,
                    stream=stream,
                    model=model,
                    agent_id=agent_id,
                    show_progress=True,
                )
            )
    except (WarehouseLocked, PrefectServerFailed) as exc:
        raise _fail(str(exc)) from None
    print_summary(summary)
    if summary.errors:
        raise typer.Exit(ROWS_FAILED_EXIT)

"""`convo-etl replay PROMPTS.csv`: validate the prompt set, run the replay flow, print a summary."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flows.cli.errors import BAD_INPUT, FAILED, CliError
from flows.cli.gate import FailUnder, JudgeModel, Prices, check_gate_inputs, checked_prices, gate
from flows.cli.options import (
    BaseUrl,
    Concurrency,
    DataDir,
    MaxBodyMb,
    Rps,
    StreamIdleTimeout,
    StreamTimeout,
    Timeout,
    client_limits,
    command_settings,
)
from flows.prefect_api import PrefectServerFailed, prefect_api
from flows.replay.flow import MISSING_KEY_MESSAGE, replay_flow
from flows.replay.matrix import matrix_variants
from flows.replay.run_id import check_run_id, new_run_id
from flows.replay.runner import STOPS_THE_RUN
from flows.replay.summary import print_summary
from flows.settings import DEFAULT_DATA_DIR, Settings
from load.warehouse import WarehouseLocked
from transform.prompts import PromptSetInvalid, parse_prompts


def _settings(data_dir: Path, base_url: str | None) -> Settings:
    """The command's settings; without a key (any API, the emulator too), say how to get going."""
    settings = command_settings(data_dir, base_url)
    if settings.api.api_key is None:
        raise CliError(MISSING_KEY_MESSAGE, BAD_INPUT)
    return settings


def replay_command(
    prompts: Annotated[Path, typer.Argument(help="Prompt CSV (see data/prompts/README.md).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    base_url: BaseUrl = None,
    run_id: Annotated[
        str | None, typer.Option(help="Name of the run (default: a new id); reuse it to resume.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="Model for starting rows that name none; repeat for a matrix run."),
    ] = None,
    agent_id: Annotated[
        list[str] | None,
        typer.Option(help="Agent for starting rows that name none; repeat for a matrix run."),
    ] = None,
    concurrency: Concurrency = 8,
    rps: Rps = None,
    repeat: Annotated[int, typer.Option(min=1, help="Send every row N times.")] = 1,
    stream: Annotated[bool, typer.Option(help="Use the streaming endpoints.")] = True,
    tag: Annotated[
        bool,
        typer.Option(
            help="Tag started conversations (metadata convo_etl_run, convo_etl_row, "
            "convo_etl_repeat) so a start that may have landed is found, not resent. "
            "--no-tag: such a start fails its row instead."
        ),
    ] = True,
    recover_timeout: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds to look for the turn of a cut stream or an unanswered send "
            "before it counts as not stored.",
        ),
    ] = 600.0,
    max_tool_rounds: Annotated[
        int,
        typer.Option(min=0, help="Function-result appends per row (rows with function_results)."),
    ] = 8,
    judge_model: JudgeModel = None,
    prices: Prices = None,
    fail_under: FailUnder = None,
    timeout: Timeout = 120.0,
    stream_idle_timeout: StreamIdleTimeout = 300.0,
    stream_timeout: StreamTimeout = 1800.0,
    max_body_mb: MaxBodyMb = 512,
) -> None:
    """Replay a prompt CSV against a model or agent, store what came back, grade it.

    Results and every SSE event go to DuckDB and Parquet; the CSV's checks grade the results.

    The API key is read from MISTRAL_API_KEY.
    """
    try:
        data = prompts.read_bytes()
    except OSError as exc:
        raise CliError(
            f"{prompts}: cannot read the file: {exc.strerror or exc}", BAD_INPUT
        ) from None
    try:
        variants = matrix_variants(model, agent_id)
        rows = [row for v in variants for row in parse_prompts(data, prompts.name, *v[1:])]
    except PromptSetInvalid as exc:
        raise CliError("\n".join(exc.errors), BAD_INPUT) from None
    except ValueError as exc:
        raise CliError(f"--model/--agent-id: {exc}", BAD_INPUT) from None
    try:
        run_id = check_run_id(run_id) if run_id else new_run_id()
    except ValueError as exc:
        raise CliError(f"--run-id: {exc}", BAD_INPUT) from None
    check_gate_inputs({row.row_id: row.checks for row in rows}, judge_model, fail_under, prompts)
    checked_prices(prices)
    settings = _settings(data_dir, base_url)
    root = settings.data_dir
    root.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, highlight=False)
    console.print(f"run id: {run_id}")
    try:
        with prefect_api(console):
            summary = asyncio.run(
                replay_flow(
                    prompts_path=str(prompts),
                    data_dir=str(root),
                    base_url=settings.api.base_url,
                    run_id=run_id,
                    concurrency=concurrency,
                    rps=rps,
                    repeat=repeat,
                    stream=stream,
                    model=model,
                    agent_id=agent_id,
                    show_progress=True,
                    tag=tag,
                    recover_timeout=recover_timeout,
                    max_tool_rounds=max_tool_rounds,
                    judge_model=judge_model,
                    prices_path=str(prices) if prices else None,
                    limits=client_limits(timeout, stream_idle_timeout, stream_timeout, max_body_mb),
                )
            )
    except (WarehouseLocked, PrefectServerFailed, *STOPS_THE_RUN) as exc:
        raise CliError(str(exc)) from None
    print_summary(summary)
    if summary.errors:
        raise typer.Exit(FAILED)
    if summary.grading is not None:
        gate(summary.grading, fail_under)

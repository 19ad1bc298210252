"""Run the export flow in this process and report it on the terminal, for the CLI and the demo."""

import asyncio
import time
from typing import Any

from rich.console import Console

from extract.errors import ApiError
from flows.export.deletions import DeletionsFailed
from flows.export.flow import TooManyFailures, export_conversations
from flows.export.head_start import running_ahead
from flows.export.origin import MixedOrigin
from flows.export.rate_share import RateLimitMissing
from flows.export.run_key import KeySecretMissing
from flows.export.store import StoreFailed
from flows.export.summary import ExportSummary, summary_table
from flows.prefect_api import prefect_api_awaited
from load.lake.reasons import LakeError, LeaseHeld
from load.warehouse import WarehouseLocked


class ExportFailed(Exception):
    """An export that stopped for a known reason; the message is one line for the user."""


def print_summary(console: Console, summary: ExportSummary, total_s: float, title: str) -> None:
    """The run's summary table, then the wall time including Prefect's start-up."""
    console.print(summary_table(summary, title))
    if summary.failure_samples:
        console.print("could not fetch (first few; all are in export_failures):", highlight=False)
        for sample in summary.failure_samples:
            console.print(f"  {sample}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"total with Prefect start-up: {total_s:.2f} s", highlight=False)


def run_export(
    flow_kwargs: dict[str, Any],
    console: Console,
    title: str = "Export",
    started: float | None = None,
    *,
    start_prefect: bool = False,
) -> ExportSummary:
    """Run export_conversations, print its summary; known errors become ExportFailed.

    Prefect's API must be up (see flows.prefect_api), or with ``start_prefect`` is brought up
    here while the export makes a head start (`export_with_head_start`); ``started`` (a
    perf_counter reading) is when the command began, so that the total printed includes the
    API's start-up.
    """
    started = time.perf_counter() if started is None else started
    exporting = (
        export_with_head_start(flow_kwargs, console)
        if start_prefect
        else export_conversations(**flow_kwargs)
    )
    try:
        summary = asyncio.run(exporting)
    except TooManyFailures as error:
        print_summary(console, error.summary, time.perf_counter() - started, title)
        raise ExportFailed(str(error)) from error
    except (
        ApiError,
        WarehouseLocked,
        StoreFailed,
        DeletionsFailed,
        MixedOrigin,
        LakeError,
        LeaseHeld,
        KeySecretMissing,
        RateLimitMissing,
    ) as error:
        raise ExportFailed(str(error)) from error
    print_summary(console, summary, time.perf_counter() - started, title)
    return summary


async def export_with_head_start(flow_kwargs: dict[str, Any], console: Console) -> ExportSummary:
    """The export flow run under Prefect's API (a temporary server if none is configured),
    its listing and fetch begun while that API comes up (flows.export.head_start)."""
    async with running_ahead(flow_kwargs), prefect_api_awaited(console):
        return await export_conversations(**flow_kwargs)

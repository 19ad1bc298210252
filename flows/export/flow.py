"""The export flow: list every conversation, fetch the new and changed ones, store them by batch.

One async flow owns the one ConversationsClient; its tasks are awaited in the flow's own event
loop (`.submit()`/`.map()` would run async tasks in new loops the client cannot cross into).
The pipeline it runs (listing, fetching and storing, overlapped) is in pipeline.py. A run the
command began before Prefect was up is adopted where it is (head_start.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import duckdb
from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run

from extract.client import ConversationsClient
from extract.pager import iter_conversation_pages
from extract.urls import redacted_url
from flows import signals
from flows.export.head_start import HeadStart, adopt
from flows.export.opening import first_page_and_warehouse
from flows.export.origin import checked_origin
from flows.export.pipeline import ExportOptions, ExportRun, export_batches
from flows.export.plan import run_client_config, run_options
from flows.export.progress import ExportProgress
from flows.export.rate_share import shared_rate
from flows.export.run_key import run_settings
from flows.export.store import record_run
from flows.export.summary import ExportSummary, summary_markdown
from flows.hot_phase import hot_phase
from flows.settings import DEFAULT_DATA_DIR, DEFAULT_WORKSPACE, ClientLimits
from load.lake.location import is_lake_url
from load.read_server import serving_reads
from load.replay_merge import mark_dead_replay_runs_interrupted
from load.warehouse import mark_dead_runs_interrupted
from transform.wording import counted

if TYPE_CHECKING:
    from flows.export.lake_store import LakeStore


class TooManyFailures(Exception):
    """More conversations failed (deleted ones aside) than the run allows; carries the summary."""

    def __init__(self, summary: ExportSummary, max_failures: int) -> None:
        super().__init__(
            f"{counted(summary.failed, 'conversation')} could not be fetched "
            f"(allowed: {max_failures}); "
            "see the export_failures table"
        )
        self.summary = summary


def _now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


async def export_recorded(
    client: ConversationsClient,
    warehouse: duckdb.DuckDBPyConnection | None,
    first_page: list[dict] | None,
    pages: AsyncIterator[list[dict]],
    options: ExportOptions,
    summary: ExportSummary,
    lake: LakeStore | None = None,
    ahead: HeadStart | None = None,
) -> None:
    """Export with the run recorded in export_runs: as running first, then as it ended; in the
    warehouse, or in the lake when ``lake`` is given; with what ``ahead`` fetched and read."""
    status = "failed"
    base_url = redacted_url(options.base_url)
    if lake is None:
        mark_dead_runs_interrupted(warehouse)
        mark_dead_replay_runs_interrupted(warehouse, options.data_dir)
        record = partial(record_run, warehouse, workspace=options.workspace)
    else:
        record = lake.record_run
    record(summary, options.mode, "running", base_url)
    try:
        with ExportProgress(options.show_progress) as progress:
            await export_batches(
                ExportRun(
                    client,
                    warehouse,
                    first_page,
                    pages,
                    options,
                    summary,
                    progress,
                    lake,
                    prefetched=ahead,
                    stored=ahead.stored if ahead else None,
                )
            )
        status = "completed" if summary.failed <= options.max_failures else "failed"
    except signals.STOP_SIGNALS:
        status = "interrupted"
        raise
    finally:
        summary.finished_at = _now()
        # A run that fetched nothing (nothing changed) spent its fetch phase listing.
        listed_ahead_at = ahead.listed_all_at if ahead else None
        summary.fetched_ahead = ahead.taken if ahead else 0
        summary.fetch_finished = summary.fetch_finished or listed_ahead_at or summary.finished_at
        summary.requests = client.stats.requests
        summary.retries = client.stats.retries
        summary.rate_limited = client.stats.rate_limited
        summary.pace_rps = client.stats.pace_rps
        record(summary, options.mode, status, base_url)


@flow(name="export-conversations")
async def export_conversations(
    data_dir: str = str(DEFAULT_DATA_DIR),
    base_url: str | None = None,
    full: bool = False,
    conversation_ids: list[str] | None = None,
    concurrency: int = 16,
    rps: float | None = None,
    batch_size: int = 250,
    page_size: int = 100,
    max_failures: int = 0,
    show_progress: bool = False,
    purge_deleted: bool = False,
    limits: ClientLimits | None = None,
    allow_mixed: bool = False,
    emulator: bool = False,
    workspace: str = DEFAULT_WORKSPACE,
    api_key_secret: str | None = None,
    rate_limit_name: str | None = None,
) -> ExportSummary:
    """Copy every conversation the key can see (or just ``conversation_ids``) into the warehouse.

    The key comes from the Prefect Secret block named ``api_key_secret``, else MISTRAL_API_KEY;
    never from a parameter, so Prefect never stores it. ``rate_limit_name`` names a Prefect rate
    limit that every run on the same key shares (flows.export.rate_share).
    """
    signals.install()
    logger = get_run_logger()
    summary = ExportSummary(run_id=str(flow_run.get_id()), started_at=_now())
    settings = await run_settings(data_dir, base_url, api_key_secret)
    tokens = await shared_rate(rate_limit_name) if rate_limit_name else None
    # Named in the code, ClientLimits is in the globals Prefect's runner pickles with this flow
    # (by value), and its parameter validation can resolve the `limits` annotation.
    config = run_client_config(settings, concurrency, rps, limits or ClientLimits())
    options = run_options(
        settings,
        full=full,
        conversation_ids=conversation_ids,
        batch_size=batch_size,
        max_failures=max_failures,
        show_progress=show_progress,
        purge_deleted=purge_deleted,
        workspace=workspace,
    )
    lake_url = data_dir if is_lake_url(data_dir) else None
    target = lake_url or options.data_dir
    logger.info("export (%s) from %s into %s", options.mode, config.origin, target)
    ahead = adopt(config, options, page_size)
    if ahead is not None:  # the run began with its head start
        summary.started_at = ahead.started_at
    async with ahead.client if ahead else ConversationsClient(config, tokens) as client:
        summary.fetch_started = ahead.started_at if ahead else _now()
        pages = ahead.pages() if ahead else iter_conversation_pages(client, page_size)
        listing = not options.conversation_ids
        if lake_url is not None:
            # Imported for a lake only: deltalake and obstore cost a local export 20 MB.
            from flows.export.lake_flow import lake_for_run

            first_page = await anext(pages, None) if listing else None
            async with lake_for_run(lake_url, options.workspace, summary.run_id) as lake:
                with hot_phase(short_gil_switches=True):
                    await export_recorded(client, None, first_page, pages, options, summary, lake)
            return await _finished(summary, max_failures)
        first_page, warehouse = await (
            ahead.opened() if ahead else first_page_and_warehouse(pages, settings, listing)
        )
        try:
            with serving_reads(warehouse, settings.data_dir), hot_phase(short_gil_switches=True):
                checked_origin(
                    warehouse,
                    options.base_url,
                    emulator,
                    allow_mixed,
                    summary.run_id,
                    options.workspace,
                )
                await export_recorded(
                    client, warehouse, first_page, pages, options, summary, ahead=ahead
                )
        finally:
            warehouse.close()
    return await _finished(summary, max_failures)


async def _finished(summary: ExportSummary, max_failures: int) -> ExportSummary:
    """Log and publish the run's summary; TooManyFailures when more failed than allowed."""
    get_run_logger().info(
        "fetched %d of %d listed, %d failed, %d deleted, in %.2f s",
        summary.fetched,
        summary.listed,
        summary.failed,
        summary.deleted,
        summary.fetch_duration_s,
    )
    await acreate_markdown_artifact(
        markdown=summary_markdown(summary),
        key="export-summary",
        description="What the export run listed, fetched, skipped and failed.",
    )
    if summary.failed > max_failures:
        raise TooManyFailures(summary, max_failures)
    return summary

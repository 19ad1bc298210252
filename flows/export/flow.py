"""The export flow: list every conversation, fetch the new and changed ones, store them by batch.

One async flow owns the one ConversationsClient; its tasks are awaited in the flow's own event
loop (`.submit()`/`.map()` would run async tasks in new loops the client cannot cross into).
The pipeline it runs (listing, fetching and storing, overlapped) is in pipeline.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run

from extract.client import ConversationsClient
from extract.pager import iter_conversation_pages
from extract.urls import redacted_url
from flows import signals
from flows.export.origin import checked_origin
from flows.export.pipeline import ExportOptions, ExportRun, export_batches
from flows.export.progress import ExportProgress
from flows.export.rate_share import shared_rate
from flows.export.run_key import run_settings
from flows.export.store import record_run
from flows.export.summary import ExportSummary, summary_markdown
from flows.hot_phase import hot_phase
from flows.settings import (
    DEFAULT_DATA_DIR,
    DEFAULT_WORKSPACE,
    ClientLimits,
    Settings,
    checked_workspace,
)
from load.lake.location import is_lake_url
from load.read_server import serving_reads
from load.replay_merge import mark_dead_replay_runs_interrupted
from load.warehouse import (
    mark_dead_runs_interrupted,
    open_warehouse,
    remove_warehouse,
    warehouse_path,
)
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


async def first_page_and_warehouse(
    pages: AsyncIterator[list[dict]], settings: Settings, listing: bool
) -> tuple[list[dict] | None, duckdb.DuckDBPyConnection]:
    """The first list page (when listing) and the open warehouse, the two at once.

    Opening a new warehouse (its DDL and first sync: ~80 ms) overlaps the first request. That
    page proves the key: when it fails, a warehouse this call created is removed again, so a
    rejected key leaves nothing behind.
    """
    data_dir = settings.data_dir
    created = not warehouse_path(data_dir).exists()
    opening = asyncio.create_task(
        asyncio.to_thread(open_warehouse, data_dir, limits=settings.duckdb_limits)
    )
    try:
        first_page = await anext(pages, None) if listing else None
    except BaseException:
        await _abandon(opening, data_dir if created else None)
        raise
    return first_page, await opening


async def _abandon(
    opening: asyncio.Task[duckdb.DuckDBPyConnection], created_in: Path | None
) -> None:
    """Close a warehouse no longer wanted, and remove it if this run created it."""
    try:
        warehouse = await opening
    except Exception:  # the first page's failure is the one to report
        return
    warehouse.close()
    if created_in is not None:
        remove_warehouse(created_in)


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
) -> None:
    """Export with the run recorded in export_runs: as running first, then as it ended; in the
    warehouse, or in the lake when ``lake`` is given."""
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
                ExportRun(client, warehouse, first_page, pages, options, summary, progress, lake)
            )
        status = "completed" if summary.failed <= options.max_failures else "failed"
    except signals.STOP_SIGNALS:
        status = "interrupted"
        raise
    finally:
        summary.finished_at = _now()
        # A run that fetched nothing (nothing changed) spent its fetch phase listing.
        summary.fetch_finished = summary.fetch_finished or summary.finished_at
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
    config = settings.api.client_config(
        concurrency=concurrency, rps=rps, **(limits or ClientLimits()).config_fields()
    )
    options = ExportOptions(
        data_dir=settings.data_dir,
        full=full,
        conversation_ids=conversation_ids or [],
        batch_size=batch_size,
        max_failures=max_failures,
        show_progress=show_progress,
        base_url=settings.api.base_url,
        purge_deleted=purge_deleted,
        workspace=checked_workspace(workspace),
    )
    lake_url = data_dir if is_lake_url(data_dir) else None
    target = lake_url or options.data_dir
    logger.info("export (%s) from %s into %s", options.mode, config.origin, target)
    async with ConversationsClient(config, tokens) as client:
        summary.fetch_started = _now()
        pages = iter_conversation_pages(client, page_size)
        listing = not options.conversation_ids
        if lake_url is not None:
            # Imported for a lake only: deltalake and obstore cost a local export 20 MB.
            from flows.export.lake_flow import lake_for_run

            first_page = await anext(pages, None) if listing else None
            async with lake_for_run(lake_url, options.workspace, summary.run_id) as lake:
                with hot_phase(short_gil_switches=True):
                    await export_recorded(client, None, first_page, pages, options, summary, lake)
            return await _finished(summary, max_failures)
        first_page, warehouse = await first_page_and_warehouse(pages, settings, listing)
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
                await export_recorded(client, warehouse, first_page, pages, options, summary)
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

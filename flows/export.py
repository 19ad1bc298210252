"""The export flow: list every conversation, fetch the new and changed ones, store them by batch.

One async flow owns the one ConversationsClient; its tasks are awaited in the flow's own event
loop (`.submit()`/`.map()` would run async tasks in new loops the client cannot cross into).
Three stages overlap: listing feeds a small queue of batches, the flow fetches batch N+1 while
batch N is flattened, written and merged in a worker thread. Memory holds at most a queued
batch of listed attributes, one batch being fetched and one being stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from extract.client import ConversationsClient
from extract.errors import ApiKeyRejected
from extract.pager import iter_conversation_pages
from extract.settings import ApiSettings
from flows.export_fetch import FetchedBatch, fetch_conversations
from flows.export_progress import ExportProgress
from flows.export_selection import select_for_fetch
from flows.export_store import StoredCounts, record_run, store_fetched_batch
from flows.export_summary import ExportSummary, summary_markdown
from flows.gc_tuning import rare_full_collections
from load.warehouse import open_warehouse, remove_warehouse, stored_updated_at, warehouse_path
from transform.wording import counted

Work = list[tuple[str, dict | None]]
_FAILURE_SAMPLES = 10
_FETCHES_IN_FLIGHT = 2


@dataclass(frozen=True)
class ExportOptions:
    """What one export run was asked to do."""

    data_dir: Path
    full: bool
    conversation_ids: list[str]
    batch_size: int
    max_failures: int
    show_progress: bool
    base_url: str

    @property
    def mode(self) -> str:
        """incremental, full or ids: how the run chose what to fetch."""
        return "ids" if self.conversation_ids else "full" if self.full else "incremental"


class TooManyFailures(Exception):
    """More conversations failed (deleted ones aside) than the run allows; carries the summary."""

    def __init__(self, summary: ExportSummary, max_failures: int) -> None:
        super().__init__(
            f"{counted(summary.failed, 'conversation')} could not be fetched "
            f"(allowed: {max_failures}); "
            "see the export_failures table"
        )
        self.summary = summary


def _retry_unless_key_rejected(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed batch unless the key was rejected: no retry can fix that."""
    return not isinstance(state.data, ApiKeyRejected)


@task(
    name="fetch-batch",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_unless_key_rejected,
)
async def fetch_batch(
    client: ConversationsClient, number: int, work: Work, progress: ExportProgress
) -> FetchedBatch:
    """Fetch history and messages of one batch of conversations; failures are kept, not raised."""
    batch = await fetch_conversations(client, number, work, progress.advance)
    get_run_logger().info(
        "batch %d: fetched %s, %d failed",
        number,
        counted(len(batch.conversations), "conversation"),
        len(batch.failures),
    )
    return batch


@task(name="store-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
async def store_batch(
    warehouse: duckdb.DuckDBPyConnection, batch: FetchedBatch, run_id: str, data_dir: Path
) -> StoredCounts:
    """Flatten, write Parquet parts and merge one batch into DuckDB, off the event loop."""
    counts = await asyncio.to_thread(store_fetched_batch, warehouse, batch, run_id, data_dir)
    get_run_logger().info(
        "batch %d: merged %s, %s, %s",
        batch.number,
        counted(counts.conversations, "conversation"),
        counted(counts.entries, "entry", "entries"),
        counted(counts.messages, "message"),
    )
    return counts


@task(name="list-conversations", cache_policy=NO_CACHE)
async def list_and_choose(
    pages: AsyncIterator[list[dict]],
    stored: Mapping[str, datetime],
    full: bool,
    batch_size: int,
    queue: asyncio.Queue[Work | None],
    summary: ExportSummary,
    progress: ExportProgress,
) -> None:
    """Page through the list, queueing batches of new or changed conversations as pages arrive."""
    work: Work = []
    async with ending_the_queue(queue):
        async for page in pages:
            chosen = select_for_fetch(page, stored, full)
            summary.listed += len(page)
            summary.selected += len(chosen)
            summary.unchanged += len(page) - len(chosen)
            progress.chosen(len(chosen))
            for item in chosen:
                work.append((item["id"], item))
                if len(work) >= batch_size:
                    await queue.put(work)
                    work = []
            if work and summary.listed == len(page):
                # The first batch is the first page's: details start flowing one page in.
                await queue.put(work)
                work = []
        if work:
            await queue.put(work)
        progress.listing_done()
        get_run_logger().info(
            "listed %s, %d to fetch", counted(summary.listed, "conversation"), summary.selected
        )


async def queue_requested(
    conversation_ids: list[str],
    batch_size: int,
    queue: asyncio.Queue[Work | None],
    summary: ExportSummary,
    progress: ExportProgress,
) -> None:
    """Queue the conversations asked for by id; they are fetched with get, not listed."""
    unique = list(dict.fromkeys(conversation_ids))
    summary.selected = len(unique)
    progress.chosen(len(unique))
    progress.listing_done()
    async with ending_the_queue(queue):
        for start in range(0, len(unique), batch_size):
            await queue.put([(cid, None) for cid in unique[start : start + batch_size]])


@asynccontextmanager
async def ending_the_queue(queue: asyncio.Queue[Work | None]) -> AsyncIterator[None]:
    """Put the end marker (None) on the queue once the producing body ends, even by an error.

    Not when the producer is cancelled: that happens because its consumer is gone, and on a full
    queue with no consumer the marker would wait forever (a failed store once hung the run).
    """
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException:
        await queue.put(None)
        raise
    await queue.put(None)


async def first_page_then_rest(
    pages: AsyncIterator[list[dict]], first: list[dict] | None
) -> AsyncIterator[list[dict]]:
    """The pages of a listing whose first page was already taken (to prove the key)."""
    if first is not None:
        yield first
    async for page in pages:
        yield page


def _absorb(summary: ExportSummary, batch: FetchedBatch, counts: StoredCounts) -> None:
    """Add one stored batch to the run's counts and timings."""
    summary.fetched += counts.conversations
    summary.entries_written += counts.entries
    summary.messages_written += counts.messages
    if summary.fetch_finished is None or batch.finished_at > summary.fetch_finished:
        summary.fetch_finished = batch.finished_at
    for failure in counts.failures:
        if failure.deleted:
            summary.deleted += 1
        else:
            summary.failed += 1
        if len(summary.failure_samples) < _FAILURE_SAMPLES:
            status = "transport error" if failure.status is None else f"HTTP {failure.status}"
            summary.failure_samples.append(
                f"{failure.conversation_id} ({failure.operation}: {status}: {failure.message})"
            )


async def fetch_and_store(
    client: ConversationsClient,
    warehouse: duckdb.DuckDBPyConnection,
    queue: asyncio.Queue[Work | None],
    summary: ExportSummary,
    progress: ExportProgress,
    data_dir: Path,
) -> None:
    """Fetch queued batches, two at a time, while the batch before them is being stored.

    Two batches in flight let the next batch fill the request slots the current one's last
    conversations leave idle; storing runs in a thread meanwhile. Batches are stored in order.
    """
    fetching: deque[asyncio.Task[FetchedBatch]] = deque()
    storing: asyncio.Task[StoredCounts] | None = None
    stored_batch: FetchedBatch | None = None

    async def store_oldest() -> None:
        nonlocal storing, stored_batch
        batch = await fetching.popleft()
        if storing is not None and stored_batch is not None:
            _absorb(summary, stored_batch, await storing)
        stored_batch = batch
        storing = asyncio.create_task(
            store_batch(warehouse, quote(batch), summary.run_id, data_dir)
        )

    try:
        while (work := await queue.get()) is not None:
            summary.batches += 1
            fetching.append(
                asyncio.create_task(
                    fetch_batch(client, summary.batches, quote(work), quote(progress))
                )
            )
            if len(fetching) == _FETCHES_IN_FLIGHT:
                await store_oldest()
        while fetching:
            await store_oldest()
    finally:
        for pending in fetching:
            pending.cancel()
        await asyncio.gather(*fetching, return_exceptions=True)
        if storing is not None and stored_batch is not None:
            _absorb(summary, stored_batch, await storing)


async def first_page_and_warehouse(
    pages: AsyncIterator[list[dict]], data_dir: Path, listing: bool
) -> tuple[list[dict] | None, duckdb.DuckDBPyConnection]:
    """The first list page (when listing) and the open warehouse, the two at once.

    Opening a new warehouse (its DDL and first sync: ~80 ms) overlaps the first request. That
    page proves the key: when it fails, a warehouse this call created is removed again, so a
    rejected key leaves nothing behind.
    """
    created = not warehouse_path(data_dir).exists()
    opening = asyncio.create_task(asyncio.to_thread(open_warehouse, data_dir))
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


async def export_batches(
    client: ConversationsClient,
    warehouse: duckdb.DuckDBPyConnection,
    first_page: list[dict] | None,
    pages: AsyncIterator[list[dict]],
    options: ExportOptions,
    summary: ExportSummary,
    progress: ExportProgress,
) -> None:
    """List (or take the requested ids) and fetch-and-store batches, the two overlapping."""
    queue: asyncio.Queue[Work | None] = asyncio.Queue(maxsize=1)
    if options.conversation_ids:
        producer = queue_requested(
            options.conversation_ids, options.batch_size, queue, summary, progress
        )
    else:
        producer = list_and_choose(
            quote(first_page_then_rest(pages, first_page)),
            quote(stored_updated_at(warehouse)),
            options.full,
            options.batch_size,
            quote(queue),
            quote(summary),
            quote(progress),
        )
    listing = asyncio.create_task(producer)
    try:
        await fetch_and_store(client, warehouse, queue, summary, progress, options.data_dir)
    finally:
        if not listing.done():
            listing.cancel()
        await asyncio.gather(listing, return_exceptions=True)
    await listing


async def export_recorded(
    client: ConversationsClient,
    warehouse: duckdb.DuckDBPyConnection,
    first_page: list[dict] | None,
    pages: AsyncIterator[list[dict]],
    options: ExportOptions,
    summary: ExportSummary,
) -> None:
    """Export with the run recorded in export_runs: as running first, then as it ended."""
    status = "failed"
    record_run(warehouse, summary, options.mode, "running", options.base_url)
    try:
        with ExportProgress(options.show_progress) as progress:
            await export_batches(client, warehouse, first_page, pages, options, summary, progress)
        status = "completed" if summary.failed <= options.max_failures else "failed"
    finally:
        summary.finished_at = _now()
        # A run that fetched nothing (nothing changed) spent its fetch phase listing.
        summary.fetch_finished = summary.fetch_finished or summary.finished_at
        summary.requests = client.stats.requests
        summary.retries = client.stats.retries
        record_run(warehouse, summary, options.mode, status, options.base_url)


@flow(name="export-conversations")
async def export_conversations(
    data_dir: str = "data",
    base_url: str | None = None,
    full: bool = False,
    conversation_ids: list[str] | None = None,
    concurrency: int = 16,
    rps: float | None = None,
    batch_size: int = 250,
    page_size: int = 100,
    max_failures: int = 0,
    show_progress: bool = False,
) -> ExportSummary:
    """Copy every conversation the key can see (or just ``conversation_ids``) into the warehouse.

    The key comes from MISTRAL_API_KEY, never from a parameter, so Prefect never stores it.
    """
    logger = get_run_logger()
    summary = ExportSummary(run_id=str(flow_run.get_id()), started_at=_now())
    settings = ApiSettings(base_url=base_url) if base_url else ApiSettings()
    config = settings.client_config(concurrency=concurrency, rps=rps)
    options = ExportOptions(
        data_dir=Path(data_dir),
        full=full,
        conversation_ids=conversation_ids or [],
        batch_size=batch_size,
        max_failures=max_failures,
        show_progress=show_progress,
        base_url=settings.base_url,
    )
    logger.info("export (%s) from %s into %s", options.mode, config.origin, options.data_dir)
    async with ConversationsClient(config) as client:
        summary.fetch_started = _now()
        pages = iter_conversation_pages(client, page_size)
        listing = not options.conversation_ids
        first_page, warehouse = await first_page_and_warehouse(pages, options.data_dir, listing)
        try:
            with rare_full_collections():
                await export_recorded(client, warehouse, first_page, pages, options, summary)
        finally:
            warehouse.close()
    logger.info(
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

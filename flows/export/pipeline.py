"""The export's pipeline: listing feeds a queue of batches; batches are fetched and stored.

Three stages overlap: listing feeds a small queue of batches, the flow fetches batch N+1 while
batch N is flattened, written and merged in a worker thread. Memory holds at most a queued
batch of listed attributes, one batch being fetched and one being stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from extract.client import ConversationsClient
from flows.export.deletions import mark_deleted, purge
from flows.export.fetch import FetchedBatch, Prefetched, fetch_conversations
from flows.export.progress import ExportProgress
from flows.export.selection import select_for_fetch
from flows.export.store import StoredCounts, store_fetched_batch
from flows.export.summary import ExportSummary
from flows.settings import DEFAULT_WORKSPACE
from load.deletions import ListedIds
from load.warehouse import stored_updated_at
from transform.updated_at_index import UpdatedAtIndex
from transform.wording import counted

if TYPE_CHECKING:
    from flows.export.lake_store import LakeStore

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
    purge_deleted: bool = False
    workspace: str = DEFAULT_WORKSPACE

    @property
    def mode(self) -> str:
        """incremental, full or ids: how the run chose what to fetch."""
        return "ids" if self.conversation_ids else "full" if self.full else "incremental"


@dataclass(frozen=True)
class ExportRun:
    """What one run's pipeline works with: the client, the open warehouse (or the lake, when
    the data dir is one), the listing (its first page already taken to prove the key), what was
    asked, the counters and the progress bar; from a head start (flows.export.head_start), the
    conversations it fetched and the stored state it read."""

    client: ConversationsClient
    warehouse: duckdb.DuckDBPyConnection | None
    first_page: list[dict] | None
    pages: AsyncIterator[list[dict]]
    options: ExportOptions
    summary: ExportSummary
    progress: ExportProgress
    lake: LakeStore | None = None
    prefetched: Prefetched | None = None
    stored: Mapping[str, datetime | None] | None = None


@task(name="fetch-batch", cache_policy=NO_CACHE)
async def fetch_batch(
    client: ConversationsClient,
    number: int,
    work: Work,
    progress: ExportProgress,
    prefetched: Prefetched | None,
) -> FetchedBatch:
    """Fetch history and messages of one batch of conversations; failures are kept, not raised.

    No task retries: the client already retries each request, and a batch run again would
    count its conversations twice in the progress bar.
    """
    batch = await fetch_conversations(client, number, work, progress.advance, prefetched)
    get_run_logger().info(
        "batch %d: fetched %s, %d failed",
        number,
        counted(len(batch.conversations), "conversation"),
        len(batch.failures),
    )
    return batch


@task(name="store-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
async def store_batch(
    warehouse: duckdb.DuckDBPyConnection,
    batch: FetchedBatch,
    run_id: str,
    data_dir: Path,
    workspace: str,
) -> StoredCounts:
    """Flatten, write Parquet parts and merge one batch into DuckDB, off the event loop."""
    counts = await asyncio.to_thread(
        store_fetched_batch, warehouse, batch, run_id, data_dir, workspace
    )
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
    listed: ListedIds,
    stored: Mapping[str, datetime | None],
    full: bool,
    batch_size: int,
    queue: asyncio.Queue[Work | None],
    summary: ExportSummary,
    progress: ExportProgress,
) -> None:
    """Page through the list, queueing batches of new or changed conversations as pages arrive.

    Every listed id is recorded in ``listed``, to find the stored conversations the list no
    longer shows once the walk is complete.
    """
    work: Work = []
    async with ending_the_queue(queue):
        async for page in pages:
            listed.add([item["id"] for item in page])
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


async def fetch_and_store(run: ExportRun, queue: asyncio.Queue[Work | None]) -> None:
    """Fetch queued batches, two at a time, while the batch before them is being stored.

    Two batches in flight let the next batch fill the request slots the current one's last
    conversations leave idle; storing runs in a thread meanwhile. Batches are stored in order.
    """
    summary = run.summary
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
            store_batch(
                run.warehouse,
                quote(batch),
                summary.run_id,
                run.options.data_dir,
                run.options.workspace,
            )
            if run.lake is None
            else run.lake.storing(batch, summary.run_id)
        )

    try:
        while (work := await queue.get()) is not None:
            summary.batches += 1
            fetching.append(
                asyncio.create_task(
                    fetch_batch(
                        run.client,
                        summary.batches,
                        quote(work),
                        quote(run.progress),
                        quote(run.prefetched),
                    )
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


async def export_batches(run: ExportRun) -> None:
    """List (or take the requested ids) and fetch-and-store batches, the two overlapping; then
    mark what a complete listing no longer showed, and purge the deleted when asked."""
    queue: asyncio.Queue[Work | None] = asyncio.Queue(maxsize=1)
    options = run.options
    listed = (
        None
        if options.conversation_ids
        else ListedIds(run.warehouse, options.workspace)
        if run.lake is None
        else run.lake.listed_ids()
    )
    try:
        if listed is None:
            producer = queue_requested(
                options.conversation_ids, options.batch_size, queue, run.summary, run.progress
            )
        else:
            producer = list_and_choose(
                quote(first_page_then_rest(run.pages, run.first_page)),
                quote(listed),
                quote(stored_state(run)),
                options.full,
                options.batch_size,
                quote(queue),
                quote(run.summary),
                quote(run.progress),
            )
        await produce_and_consume(run, queue, producer)
        if listed is not None:
            counts = await mark_deleted(quote(run.client), quote(listed), run.summary.run_id)
            run.summary.marked_deleted = counts.marked
    finally:
        if listed is not None:
            listed.close()
    if options.purge_deleted:
        run.summary.purged = await (
            purge(quote(run.warehouse), options.data_dir, options.workspace)
            if run.lake is None
            else run.lake.purging()
        )


def stored_state(run: ExportRun) -> Mapping[str, datetime | None]:
    """Each stored conversation's updated_at: what the listing compares against."""
    if run.stored is not None:
        return run.stored
    if run.lake is not None:
        return run.lake.stored_state()
    return UpdatedAtIndex(stored_updated_at(run.warehouse, run.options.workspace))


async def produce_and_consume(
    run: ExportRun, queue: asyncio.Queue[Work | None], producer: Coroutine[Any, Any, None]
) -> None:
    """Run the producer of batches beside fetch-and-store; its error, if any, is raised last."""
    listing = asyncio.create_task(producer)
    try:
        await fetch_and_store(run, queue)
    finally:
        if not listing.done():
            listing.cancel()
        await asyncio.gather(listing, return_exceptions=True)
    await listing

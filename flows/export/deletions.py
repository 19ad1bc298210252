"""Mark the stored conversations a complete listing no longer showed, and purge them on request.

Only a run that walked the whole list marks anything: a `--conversation-id` run lists nothing,
and a listing that failed or was interrupted raises before marking. A conversation absent from
the listing is marked only once a get answers 404: offset pages shift while conversations are
deleted, so a walk can skip a live one, and a mark is what `--purge-deleted` acts on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extract.client import ConversationsClient
from extract.errors import ApiError, ApiKeyRejected, NotFound
from load.deletions import ListedIds, purge_deleted

_CHECKED_PER_BLOCK = 1_000


class DeletionsFailed(Exception):
    """Marking or purging the deleted conversations failed on the warehouse or the data dir.

    Each step is one transaction (a purge rewrites the Parquet parts first): a run that stops
    here leaves the marks as they were, and the next run does the step again.
    """


@dataclass(frozen=True)
class DeletionCounts:
    """What one run's marking found: newly marked, un-marked (listed again), absent from the
    listing but still answering, and absent but unconfirmed (the get failed otherwise)."""

    marked: int
    restored: int
    still_there: int
    unconfirmed: int


async def gone_ids(client: ConversationsClient, ids: list[str]) -> tuple[list[str], int, int]:
    """Which of ``ids`` a get answers 404 for; also how many answered and how many failed."""
    pending = iter(ids)
    gone: list[str] = []
    answered = failed = 0

    async def worker() -> None:
        nonlocal answered, failed
        for cid in pending:
            try:
                await client.get_conversation(cid)
                answered += 1
            except NotFound:
                gone.append(cid)
            except ApiKeyRejected:
                raise
            except ApiError:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(min(client.config.concurrency, len(ids)))))
    return gone, answered, failed


@task(name="mark-deleted", cache_policy=NO_CACHE)
async def mark_deleted(
    client: ConversationsClient, listed: ListedIds, run_id: str
) -> DeletionCounts:
    """Un-mark the listed, then mark the absent that a get confirms gone, a block at a time."""
    deleted_at = datetime.now(UTC)
    try:
        restored = await asyncio.to_thread(listed.restore_listed)
        absent = await asyncio.to_thread(listed.absent)
        marked = still_there = unconfirmed = 0
        for start in range(0, len(absent), _CHECKED_PER_BLOCK):
            block = absent.slice(start, _CHECKED_PER_BLOCK).to_pylist()
            gone, answered, failed = await gone_ids(client, block)
            still_there += answered
            unconfirmed += failed
            if gone:
                ids = pa.array(gone, pa.string())
                marked += await asyncio.to_thread(listed.mark_deleted, ids, run_id, deleted_at)
    except (OSError, duckdb.Error) as error:
        raise DeletionsFailed(f"the deleted conversations could not be marked: {error}") from error
    counts = DeletionCounts(marked, restored, still_there, unconfirmed)
    get_run_logger().info(
        "marked %d conversations deleted, %d listed again; absent from the listing but "
        "still there: %d, unconfirmed (get failed): %d",
        counts.marked,
        counts.restored,
        counts.still_there,
        counts.unconfirmed,
    )
    return counts


@task(name="purge-deleted", cache_policy=NO_CACHE)
async def purge(warehouse: duckdb.DuckDBPyConnection, data_dir: Path, workspace: str) -> int:
    """Remove the conversations of ``workspace`` marked deleted from Parquet and DuckDB, off the
    event loop."""
    try:
        purged = await asyncio.to_thread(purge_deleted, warehouse, data_dir, workspace)
    except (OSError, duckdb.Error) as error:
        raise DeletionsFailed(
            f"the deleted conversations could not be purged from {data_dir}: {error} "
            "(they stay marked; the next --purge-deleted run finishes the purge)"
        ) from error
    get_run_logger().info("purged %d deleted conversations", purged)
    return purged

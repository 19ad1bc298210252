"""The export's store when the data dir is a lake (s3://, gs://, az://): Delta tables via
load.lake, every row in the run's workspace. The local store (store.py) keeps DuckDB+Parquet.

The pipeline calls the same four things of either store: the stored state, the listing's ids,
storing a batch, and the purge; the flow records the run through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.export.fetch import FetchedBatch
from flows.export.store import StoredCounts, failures_table, flatten_batch, run_row
from flows.export.summary import ExportSummary
from load.lake.deletions import LakeListedIds, purge_deleted
from load.lake.runs import mark_dead_runs_interrupted, record_failures, record_run
from load.lake.tables import Lake, open_lake, read_updated_at, upsert_batch
from transform.updated_at_index import UpdatedAtIndex
from transform.wording import counted


@dataclass(frozen=True)
class LakeStore:
    """The lake an export writes to, and the workspace its rows belong to."""

    lake: Lake
    workspace: str

    @classmethod
    def opened(cls, url: str, workspace: str) -> LakeStore:
        """The lake at ``url`` with its tables created if missing (credentials: environment)."""
        return cls(open_lake(url), workspace)

    def stored_state(self) -> UpdatedAtIndex:
        """The workspace's stored updated_at by conversation id: what makes a run incremental."""
        return read_updated_at(self.lake, self.workspace)

    def listed_ids(self) -> LakeListedIds:
        """Where a complete listing's ids go, to find the stored conversations it missed."""
        return LakeListedIds(self.lake, self.workspace)

    def store(self, batch: FetchedBatch, run_id: str) -> StoredCounts:
        """Flatten a fetched batch, merge it into the workspace, append its failures."""
        tables, failures = flatten_batch(batch, run_id)
        upsert_batch(self.lake, self.workspace, tables)
        record_failures(self.lake, self.workspace, failures_table(run_id, failures))
        return StoredCounts.of(tables, failures)

    def storing(self, batch: FetchedBatch, run_id: str) -> Coroutine[Any, Any, StoredCounts]:
        """The pipeline's call to store a batch here: the store-batch-in-lake task."""
        return store_lake_batch(quote(self), quote(batch), run_id)

    def purging(self) -> Coroutine[Any, Any, int]:
        """The pipeline's call to purge the deleted here: the purge-deleted-from-lake task."""
        return purge_lake(quote(self))

    def begin_run(self, run_id: str) -> None:
        """Runs of the workspace still recorded as running died: this run holds the lease."""
        mark_dead_runs_interrupted(self.lake, self.workspace, run_id)

    def record_run(self, summary: ExportSummary, mode: str, status: str, base_url: str) -> None:
        """Insert or replace the run's export_runs row (``base_url`` already redacted)."""
        record_run(self.lake, self.workspace, run_row(summary, mode, status, base_url))


@task(name="store-batch-in-lake", cache_policy=NO_CACHE)
async def store_lake_batch(store: LakeStore, batch: FetchedBatch, run_id: str) -> StoredCounts:
    """Flatten one batch and merge it into the lake, off the event loop."""
    counts = await asyncio.to_thread(store.store, batch, run_id)
    get_run_logger().info(
        "batch %d: merged %s, %s into the lake",
        batch.number,
        counted(counts.conversations, "conversation"),
        counted(counts.entries, "entry", "entries"),
    )
    return counts


@task(name="purge-deleted-from-lake", cache_policy=NO_CACHE)
async def purge_lake(store: LakeStore) -> int:
    """Remove the workspace's conversations marked deleted from the lake's tables."""
    purged = await asyncio.to_thread(purge_deleted, store.lake, store.workspace)
    get_run_logger().info("purged %d deleted conversations from the lake", purged)
    return purged

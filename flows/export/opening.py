"""A run's opening: its first list page and its warehouse, the two at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb

from flows.settings import Settings
from load.warehouse import open_warehouse, remove_warehouse, warehouse_path


async def first_page_and_warehouse(
    pages: AsyncIterator[list[dict]], settings: Settings, listing: bool
) -> tuple[list[dict] | None, duckdb.DuckDBPyConnection]:
    """The first list page (when listing) and the open warehouse, the two at once.

    Opening a new warehouse (its DDL and first sync: ~80 ms) overlaps the first request. That
    page proves the key: when it fails, or the call is cancelled, a warehouse this call created
    is removed again, so a rejected key leaves nothing behind. (The open runs in a thread that
    a cancellation cannot stop: it is shielded, and closed once it is done.)
    """
    data_dir = settings.data_dir
    created = not warehouse_path(data_dir).exists()
    opening = asyncio.create_task(
        asyncio.to_thread(open_warehouse, data_dir, limits=settings.duckdb_limits)
    )
    try:
        first_page = await anext(pages, None) if listing else None
        return first_page, await asyncio.shield(opening)
    except BaseException:
        await _abandon(opening, data_dir if created else None)
        raise


async def _abandon(
    opening: asyncio.Task[duckdb.DuckDBPyConnection], created_in: Path | None
) -> None:
    """Close a warehouse no longer wanted, and remove it if this run created it."""
    try:
        warehouse = await opening
    except Exception:  # the first page's failure is the one to report
        return
    discard_warehouse(warehouse, created_in)


def discard_warehouse(warehouse: duckdb.DuckDBPyConnection, created_in: Path | None) -> None:
    """Close a warehouse nothing was written to, and remove it if it was created in
    ``created_in`` (a new data dir's warehouse that a run never used)."""
    warehouse.close()
    if created_in is not None:
        remove_warehouse(created_in)

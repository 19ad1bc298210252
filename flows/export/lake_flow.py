"""An export run's hold on a lake: the workspace's lease, the tables, the dead runs marked.

Nothing of the run lives on the local disk: the incremental state is read from the lake, and
the lease (load.lake.lease) keeps a second export of the same workspace from starting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flows.export.lake_store import LakeStore
from load.lake.lease import LEASE_SECONDS, leased


@asynccontextmanager
async def lake_for_run(
    url: str, workspace: str, run_id: str, lease_seconds: float = LEASE_SECONDS
) -> AsyncIterator[LakeStore]:
    """The lake at ``url`` for one run of ``workspace``: its lease taken (LeaseHeld if another
    run holds it) and renewed until the block ends, its tables created if missing."""
    holding = leased(url, workspace, run_id, lease_seconds)
    await asyncio.to_thread(holding.__enter__)
    try:
        store = await asyncio.to_thread(LakeStore.opened, url, workspace)
        await asyncio.to_thread(store.begin_run, run_id)
        yield store
    except BaseException as error:
        await asyncio.to_thread(holding.__exit__, type(error), error, error.__traceback__)
        raise
    await asyncio.to_thread(holding.__exit__, None, None, None)

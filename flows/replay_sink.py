"""Where finished replay rows wait until they are written, a batch at a time."""

import asyncio
from collections.abc import Awaitable, Callable

from flows.replay_progress import RunProgress
from transform.replay import OK, ReplayItem


class ResultSink:
    """Collects finished rows and writes them in batches: when full, or every few seconds."""

    def __init__(
        self,
        write: Callable[[list[ReplayItem]], Awaitable[None]],
        batch_rows: int,
        progress: RunProgress,
    ) -> None:
        self._write = write
        self._batch_rows = batch_rows
        self._progress = progress
        self._pending: list[ReplayItem] = []
        self._lock = asyncio.Lock()

    async def add(self, item: ReplayItem) -> None:
        """Queue one finished row; write the batch if it is full."""
        self._pending.append(item)
        self._progress.finished(item.outcome.status == OK)
        if len(self._pending) >= self._batch_rows:
            await self.flush()

    async def flush(self) -> None:
        """Write whatever is queued (one batch at a time)."""
        async with self._lock:
            items, self._pending = self._pending, []
            if items:
                await self._write(items)

    async def flush_every(self, seconds: float) -> None:
        """Flush on a timer so slow runs still reach disk; cancelled when the run ends."""
        while True:
            await asyncio.sleep(seconds)
            await self.flush()

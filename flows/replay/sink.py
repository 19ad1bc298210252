"""Where finished replay rows wait until they are written, a batch at a time."""

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from flows.replay.progress import RunProgress
from transform.replay import OK, ReplayItem

Batch = list[ReplayItem]


class ResultSink:
    """Collects finished rows; one writer task stores them in batches: when full, or on a timer.

    Adding a row never waits for a write, so no turn waits on storage; and since only the writer
    task writes, a write is never cancelled half way (its thread would go on using the warehouse
    connection while the flow closes the run).
    """

    def __init__(
        self,
        write: Callable[[Batch], Awaitable[None]],
        batch_rows: int,
        flush_seconds: float,
        progress: RunProgress,
    ) -> None:
        self._write = write
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._progress = progress
        self._pending: Batch = []
        self._full: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        """Start the writer task."""
        self._writer = asyncio.create_task(self._write_batches())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Write what is still queued (also when the run failed), then stop the writer."""
        self._hand_over()
        self._full.put_nowait(None)
        await self._running_writer()

    def add(self, item: ReplayItem) -> None:
        """Queue one finished row; hand the batch to the writer when it is full."""
        if self._running_writer().done():
            self._running_writer().result()  # a failed write fails the run now, not at the end
        self._pending.append(item)
        self._progress.finished(item.outcome.status == OK)
        if len(self._pending) >= self._batch_rows:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._pending:
            self._full.put_nowait(self._pending)
            self._pending = []

    def _running_writer(self) -> asyncio.Task[None]:
        if self._writer is None:
            raise RuntimeError("ResultSink must be used as `async with ResultSink(...)`")
        return self._writer

    async def _write_batches(self) -> None:
        """Write full batches as they come, and what is pending when none came for a while."""
        while True:
            try:
                async with asyncio.timeout(self._flush_seconds):
                    batch = await self._full.get()
            except TimeoutError:
                batch, self._pending = self._pending, []
            if batch is None:
                return
            if batch:
                await self._write(batch)

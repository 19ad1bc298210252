"""The result sink: batches by size and by timer, the rest on exit, and write failures surface."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from flows.replay.progress import RunProgress
from flows.replay.sink import Batch, ResultSink
from transform.prompts import PromptRow
from transform.replay import OK, ReplayItem, TurnOutcome
from transform.replay_outputs import AssistantOutput

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def item(number: int) -> ReplayItem:
    outcome = TurnOutcome(
        mode="start",
        source_conversation_id=None,
        conversation_id=f"conv_{number}",
        status=OK,
        error=None,
        output=AssistantOutput("answer", f"msg_{number}"),
        recovered=False,
        attempts=1,
        ttft_ms=1.0,
        latency_ms=2.0,
        started_at=AT,
        finished_at=AT,
    )
    return ReplayItem(PromptRow(number, str(number), "Q", model="m"), 0, outcome)


def run_sink(
    batch_rows: int, flush_seconds: float, feed: Callable[[ResultSink], Awaitable[None]]
) -> list[list[str]]:
    """The row ids of every batch written while ``feed(sink)`` adds rows."""
    written: list[list[str]] = []

    async def write(batch: Batch) -> None:
        await asyncio.sleep(0.01)  # a write takes time: rows keep coming meanwhile
        written.append([i.row.row_id for i in batch])

    async def main() -> None:
        with RunProgress(100, visible=False) as progress:
            async with ResultSink(write, batch_rows, flush_seconds, progress) as sink:
                await feed(sink)

    asyncio.run(main())
    return written


def test_full_batches_are_written_and_the_rest_on_exit() -> None:
    async def feed(sink: ResultSink) -> None:
        for number in range(7):
            sink.add(item(number))
            await asyncio.sleep(0)

    assert run_sink(3, 60.0, feed) == [["0", "1", "2"], ["3", "4", "5"], ["6"]]


def test_rows_waiting_longer_than_the_timer_are_written() -> None:
    async def feed(sink: ResultSink) -> None:
        sink.add(item(0))
        await asyncio.sleep(0.2)
        sink.add(item(1))

    assert run_sink(100, 0.05, feed) == [["0"], ["1"]]


def test_a_failed_write_fails_the_next_add() -> None:
    async def write(batch: Batch) -> None:
        raise OSError("disk full")

    async def main() -> None:
        with RunProgress(10, visible=False) as progress:
            async with ResultSink(write, 1, 60.0, progress) as sink:
                sink.add(item(0))
                await asyncio.sleep(0.01)
                sink.add(item(1))

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(main())

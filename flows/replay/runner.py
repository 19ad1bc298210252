"""Sending replay rows through the one client: start, append or restart, streamed or not.

A thread's turns go in order and a failed turn fails the rest of its thread; a 409 (the
conversation is busy elsewhere) is waited out; a cut stream is read back from the
conversation's history before it is sent again; every failure ends as an error outcome.
"""

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from extract.client import ConversationsClient
from extract.errors import ApiError, ApiKeyRejected, Conflict, StreamCut, Unreachable
from extract.events import StreamEvent
from flows.replay.progress import RunProgress
from flows.replay.sink import ResultSink
from load.replay_merge import StoredResult
from transform.prompts import PromptRow, PromptSequence
from transform.replay import ERROR, OK, ReplayItem, TurnOutcome
from transform.replay_outputs import (
    AssistantOutput,
    StreamSummary,
    recovered_output,
    response_output,
    summarize_stream,
)
from transform.replay_requests import APPEND, START, request_body, turn_mode

# Failures every other row would meet too: the run stops at the first, with one line.
STOPS_THE_RUN = (ApiKeyRejected, Unreachable)
PREVIOUS_TURN_FAILED = "previous turn failed"
STREAM_ATTEMPTS = 3
RECOVERY_POLLS = 3
RECOVERY_POLL_SECONDS = 0.2
CONFLICT_WAITS = (0.25, 0.5, 1.0, 2.0)
NO_OUTPUT = StreamSummary(None, AssistantOutput("", None), False, None, None)


class TurnRunner:
    """Sends rows through the one client: streamed or not, recovering cut streams from history."""

    def __init__(self, client: ConversationsClient, stream: bool, concurrency: int) -> None:
        self._client = client
        self._stream = stream
        self._slots = asyncio.Semaphore(concurrency)
        # Two requests on one conversation at once get a 409: appends to a named conversation
        # (several rows, or repeats of one row) take turns.
        self._conversation_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.sent = 0
        self.skipped = 0

    async def run_sequence(
        self,
        sequence: PromptSequence,
        repeat_index: int,
        stored: dict[tuple[str, int], StoredResult],
        sink: ResultSink,
        progress: RunProgress,
    ) -> None:
        """Run a thread's turns in order (or one row); a failed turn fails the turns after it."""
        thread_conversation: str | None = None
        failed = False
        for position, row in enumerate(sequence.rows):
            earlier = stored.get((row.row_id, repeat_index))
            if earlier is not None and earlier.status == OK:
                progress.finished(ok=True)
                self.skipped += 1
                thread_conversation = earlier.conversation_id if sequence.thread else None
                continue
            mode = turn_mode(row, later_turn=position > 0)
            source = thread_conversation or row.conversation_id
            if failed:
                outcome = _unsent(mode, source, PREVIOUS_TURN_FAILED)
            else:
                outcome = await self.run_turn(row, mode, source)
            sink.add(ReplayItem(row, repeat_index, outcome))
            if sequence.thread is not None:
                failed = outcome.status != OK
                thread_conversation = outcome.conversation_id

    async def run_turn(self, row: PromptRow, mode: str, source: str | None) -> TurnOutcome:
        """Send one row and return its outcome; every failure becomes an error outcome."""
        lock = self._conversation_locks[source] if source else contextlib.nullcontext()
        async with lock, self._slots:
            self.sent += 1
            started_at, clock = datetime.now(UTC), time.perf_counter()
            body = request_body(row, mode)
            for wait in (*CONFLICT_WAITS, None):
                try:
                    if self._stream:
                        outcome = await self._streamed(row, mode, source, body, started_at)
                    else:
                        outcome = await self._plain(mode, source, body, started_at)
                except Conflict as exc:
                    # Someone else is updating the conversation; nothing was stored, so retry.
                    if wait is not None:
                        await asyncio.sleep(wait)
                        continue
                    outcome = _unsent(mode, source, str(exc), started_at)
                except STOPS_THE_RUN:
                    raise
                except ApiError as exc:
                    outcome = _unsent(mode, source, str(exc), started_at)
                except Exception as exc:  # a row must end with a result, whatever went wrong
                    outcome = _unsent(mode, source, f"{type(exc).__name__}: {exc}", started_at)
                break
            latency_ms = (time.perf_counter() - clock) * 1000.0
            return replace(outcome, latency_ms=latency_ms, finished_at=datetime.now(UTC))

    async def _plain(
        self, mode: str, source: str | None, body: dict[str, Any], started_at: datetime
    ) -> TurnOutcome:
        if mode == START:
            response = await self._client.start_conversation(body)
        elif mode == APPEND:
            response = await self._client.append_to_conversation(source, body)  # type: ignore[arg-type]
        else:
            response = await self._client.restart_conversation(source, body)  # type: ignore[arg-type]
        summary = StreamSummary(
            response.get("conversation_id"), response_output(response), True, None, None
        )
        return _turn_outcome(mode, source, summary, started_at)

    def _open_stream(
        self, mode: str, source: str | None, body: dict[str, Any]
    ) -> AsyncIterator[StreamEvent]:
        if mode == START:
            return self._client.stream_start(body)
        if mode == APPEND:
            return self._client.stream_append(source, body)  # type: ignore[arg-type]
        return self._client.stream_restart(source, body)  # type: ignore[arg-type]

    async def _streamed(
        self,
        row: PromptRow,
        mode: str,
        source: str | None,
        body: dict[str, Any],
        started_at: datetime,
    ) -> TurnOutcome:
        """Stream a row; a cut stream is read back from history, else retried, else an error."""
        kept: list[tuple[int, StreamEvent]] = []
        summary = NO_OUTPUT
        for attempt in range(1, STREAM_ATTEMPTS + 1):
            events: list[StreamEvent] = []
            try:
                async for event in self._open_stream(mode, source, body):
                    events.append(event)
            except StreamCut:
                kept.extend((attempt, event) for event in events)
                summary = summarize_stream(events)
                recovered = await self._recover(summary.conversation_id, row.prompt)
                if recovered is not None:
                    summary = replace(summary, output=recovered)
                    return _turn_outcome(
                        mode, source, summary, started_at, kept, attempt, recovered=True
                    )
                continue
            except ApiError as exc:
                if isinstance(exc, STOPS_THE_RUN) or (
                    isinstance(exc, Conflict) and not kept and not events
                ):
                    raise
                kept.extend((attempt, event) for event in events)
                partial = summarize_stream(events)
                return _turn_outcome(mode, source, partial, started_at, kept, attempt, str(exc))
            kept.extend((attempt, event) for event in events)
            summary = summarize_stream(events)
            return _turn_outcome(mode, source, summary, started_at, kept, attempt, summary.error)
        cut = f"stream cut before conversation.response.done ({STREAM_ATTEMPTS} attempts)"
        return _turn_outcome(mode, source, summary, started_at, kept, STREAM_ATTEMPTS, cut)

    async def _recover(self, conversation_id: str | None, prompt: str) -> AssistantOutput | None:
        """The stored answer of a cut turn, read from its conversation's history, if it is there."""
        if conversation_id is None:
            return None
        for poll in range(RECOVERY_POLLS):
            if poll:
                await asyncio.sleep(RECOVERY_POLL_SECONDS)
            try:
                history = await self._client.get_history(conversation_id)
            except ApiError:
                return None
            recovered = recovered_output(history, prompt)
            if recovered is not None:
                return recovered
        return None


def _turn_outcome(
    mode: str,
    source: str | None,
    summary: StreamSummary,
    started_at: datetime,
    events: list[tuple[int, StreamEvent]] | None = None,
    attempts: int = 1,
    error: str | None = None,
    recovered: bool = False,
) -> TurnOutcome:
    """The outcome of a sent turn: ok unless an error is given; latency is set by the caller."""
    return TurnOutcome(
        mode=mode,
        source_conversation_id=source,
        conversation_id=summary.conversation_id,
        status=ERROR if error else OK,
        error=error,
        output=summary.output,
        recovered=recovered,
        attempts=attempts,
        ttft_ms=summary.ttft_ms,
        latency_ms=None,
        started_at=started_at,
        finished_at=started_at,
        events=tuple(events or ()),
    )


def _unsent(
    mode: str, source: str | None, error: str, started_at: datetime | None = None
) -> TurnOutcome:
    """An error outcome with no output (a failed request, or a turn never sent)."""
    outcome = _turn_outcome(mode, source, NO_OUTPUT, started_at or datetime.now(UTC), error=error)
    return replace(outcome, attempts=0 if started_at is None else 1)

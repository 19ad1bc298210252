"""Sending replay rows: start, append or restart, streamed or not, never a turn twice.

Every send is journaled (fsync'd) before it goes out. A send whose outcome is unknown (a 5xx, a
timeout or a reset after the body went out, a cut stream) is looked up in the API until its turn
appears or the recover timeout passes, and is resent only when it provably did not land. A 409
means the conversation is still generating: it is waited out. A turn that ends in function
calls is answered from the row's `function_results`, round after round, until the model
answers in text. A thread's turns go in order; a failed turn fails the rest of its thread.
"""

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from extract.client import ConversationsClient
from extract.errors import (
    ApiError,
    ApiKeyRejected,
    Conflict,
    OutcomeUnknown,
    RetriesExhausted,
    StreamCut,
    Unreachable,
)
from extract.events import StreamEvent
from flows.replay.landing import LandingFinder
from flows.replay.progress import RunProgress
from flows.replay.sink import ResultSink
from load.replay_journal import JournalSend, SendJournal
from load.replay_merge import StoredResult
from transform.prompts import PromptRow, PromptSequence
from transform.replay import ERROR, OK, ReplayItem, TurnOutcome
from transform.replay_outputs import (
    FINISH_FUNCTION_CALL,
    AssistantOutput,
    response_output,
    summarize_stream,
)
from transform.replay_requests import (
    APPEND,
    START,
    function_result_inputs,
    request_body,
    run_tag,
    turn_mode,
)

PREVIOUS_TURN_FAILED = "previous turn failed"
# Failures no other row can escape: the run stops at the first, and no further row is sent.
STOPS_THE_RUN = (ApiKeyRejected, Unreachable)
SEND_ATTEMPTS = 3
CONFLICT_FIRST_WAIT, CONFLICT_MAX_WAIT = 0.25, 5.0
NO_OUTPUT = AssistantOutput("", None)


@dataclass(frozen=True)
class ReplayPolicy:
    """How a run guards against duplicates and answers function calls."""

    run_id: str
    tag: bool = True
    recover_timeout: float = 600.0
    max_tool_rounds: int = 8


class AmbiguousSend(Exception):
    """A send that may have landed; `conversation_id` is set when a stream named it."""

    def __init__(self, reason: str, conversation_id: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.conversation_id = conversation_id


class _JournalUnwritable(Exception):
    """The journal could not record a send (a full or failing disk): it was not sent."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _RowTrace:
    """What one row's sends leave behind: every event, attempts, first-token time."""

    events: list[tuple[int, StreamEvent]] = field(default_factory=list)
    attempts: int = 0
    recovered: bool = False
    ttft_ms: float | None = None


@dataclass(frozen=True)
class _Turn:
    conversation_id: str | None
    output: AssistantOutput
    error: str | None = None


class TurnRunner:
    """Sends rows through the clients: reads through `client`, sends through `poster` (a client
    that never retries a POST blindly)."""

    def __init__(
        self,
        client: ConversationsClient,
        poster: ConversationsClient,
        stream: bool,
        concurrency: int,
        journal: SendJournal,
        policy: ReplayPolicy,
    ) -> None:
        self._client = client
        self._poster = poster
        self._stream = stream
        self._slots = asyncio.Semaphore(concurrency)
        self._journal = journal
        self._policy = policy
        self._finder = LandingFinder(client, policy.recover_timeout)
        self._pending = journal.pending()
        # Two requests on one conversation at once get a 409: appends to a named conversation
        # (several rows, or repeats of one row) take turns.
        self._conversation_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.sent = 0
        self.skipped = 0
        # What stopped the run: one of STOPS_THE_RUN, or the journal's disk refusing a send.
        self.stopped_by: ApiError | OSError | None = None

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
            if self.stopped_by is not None:
                return  # unsent rows stay unstored: a resume sends them
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
                outcome = await self.run_turn(row, repeat_index, mode, source)
                if outcome is None:
                    return
            sink.add(ReplayItem(row, repeat_index, outcome))
            if sequence.thread is not None:
                failed = outcome.status != OK
                thread_conversation = outcome.conversation_id

    async def run_turn(
        self, row: PromptRow, repeat_index: int, mode: str, source: str | None
    ) -> TurnOutcome | None:
        """Send one row (and its function-call rounds); every failure becomes an error outcome,
        but one that stops the run (a rejected key, an unreachable API): then None."""
        lock = self._conversation_locks[source] if source else contextlib.nullcontext()
        async with lock, self._slots:
            if self.stopped_by is not None:
                return None
            self.sent += 1
            started_at, clock = datetime.now(UTC), time.perf_counter()
            trace = _RowTrace()
            try:
                turn = await self._row_turns(row, repeat_index, mode, source, trace)
            except STOPS_THE_RUN as exc:
                self.stopped_by = self.stopped_by or exc
                await self._journal.refused(row.send_key, repeat_index)
                return None
            except _JournalUnwritable as exc:
                self.stopped_by = self.stopped_by or exc.error
                return None
            except ApiError as exc:
                turn = _Turn(None, NO_OUTPUT, str(exc))
            except Exception as exc:  # a row must end with a result, whatever went wrong
                turn = _Turn(None, NO_OUTPUT, f"{type(exc).__name__}: {exc}")
            return TurnOutcome(
                mode=mode,
                source_conversation_id=source,
                conversation_id=turn.conversation_id,
                status=ERROR if turn.error else OK,
                error=turn.error,
                output=turn.output,
                recovered=trace.recovered,
                attempts=trace.attempts,
                ttft_ms=trace.ttft_ms,
                latency_ms=(time.perf_counter() - clock) * 1000.0,
                started_at=started_at,
                finished_at=datetime.now(UTC),
                events=tuple(trace.events),
            )

    async def _row_turns(
        self, row: PromptRow, repeat_index: int, mode: str, source: str | None, trace: _RowTrace
    ) -> _Turn:
        """The row's first turn (or what an earlier attempt's send left), then its rounds."""
        pending = self._pending.pop((row.send_key, repeat_index), None)
        tag = run_tag(self._policy.run_id, row.send_key, repeat_index) if self._policy.tag else None
        send = _Send(row, repeat_index, 0, mode, source, request_body(row, mode, tag), tag)
        turn: _Turn | None = None
        if pending is not None:
            landed = await self._finder.find(pending)
            if landed is not None:
                trace.recovered = True
                turn = _Turn(*landed)
                send = replace(send, round=pending.round)
            elif pending.round > 0:
                # A function-result append that did not land: answer the calls again.
                turn = await self._last_turn(pending.target)
                send = replace(send, round=pending.round - 1)
        if turn is None:
            turn = await self._send(send, trace)
        return await self._function_rounds(send, turn, trace)

    async def _last_turn(self, conversation_id: str | None) -> _Turn:
        """The conversation's last stored turn, as it stands."""
        landed = await self._finder.find(
            JournalSend(0, START, None, None, None, "", conversation_id)
        )
        if landed is None:
            return _Turn(conversation_id, NO_OUTPUT, "the conversation has no stored turn")
        return _Turn(*landed)

    async def _function_rounds(self, first: "_Send", turn: _Turn, trace: _RowTrace) -> _Turn:
        """Answer function calls from the row's results until the model answers in text."""
        results = first.row.request.function_results
        output, last = turn.output, turn.output
        round_ = first.round
        while turn.error is None and last.finish == FINISH_FUNCTION_CALL and results is not None:
            round_ += 1
            if round_ > self._policy.max_tool_rounds:
                limit = self._policy.max_tool_rounds
                return replace(
                    turn,
                    output=output,
                    error=f"still calling functions after {limit} rounds (--max-tool-rounds)",
                )
            inputs = function_result_inputs(last.function_calls, results)
            if isinstance(inputs, str):
                error = f"function_results has no result for function {inputs!r}"
                return replace(turn, output=output, error=error)
            body = {**_append_options(first.body), "inputs": inputs}
            target = turn.conversation_id
            turn = await self._send(
                _Send(first.row, first.repeat_index, round_, APPEND, target, body, None), trace
            )
            last = turn.output
            output = output.then(last)
        return replace(turn, output=output)

    async def _send(self, send: "_Send", trace: _RowTrace) -> _Turn:
        """One request, journaled first; an ambiguous failure is looked up before any resend,
        a 409 waited out."""
        resends, conflict_wait, conflict_deadline = 0, CONFLICT_FIRST_WAIT, None
        while True:
            record = await self._journaled(send)
            trace.attempts += 1
            try:
                return await self._request(send, trace)
            except Conflict as exc:
                # Still generating an earlier turn: nothing was stored, wait and send again.
                now = time.monotonic()
                conflict_deadline = conflict_deadline or now + self._policy.recover_timeout
                if now + conflict_wait > conflict_deadline:
                    return _Turn(send.target, NO_OUTPUT, str(exc))
                await asyncio.sleep(conflict_wait)
                conflict_wait = min(conflict_wait * 2, CONFLICT_MAX_WAIT)
            except AmbiguousSend as ambiguous:
                found = replace(record, conversation_id=ambiguous.conversation_id)
                # An unstored turn (store: false) cannot be duplicated: no need to look.
                landed = None if send.body.get("store") is False else await self._finder.find(found)
                if landed is not None:
                    trace.recovered = True
                    return _Turn(*landed)
                unfindable = found.tag is None and found.conversation_id is None
                if found.mode != APPEND and unfindable and send.body.get("store") is not False:
                    reason = f"{ambiguous.reason}; it may have started a conversation, so it "
                    return _Turn(None, NO_OUTPUT, reason + "was not resent (--no-tag)")
                resends += 1
                if resends == SEND_ATTEMPTS:
                    return _Turn(found.conversation_id, NO_OUTPUT, ambiguous.reason)

    async def _journaled(self, send: "_Send") -> JournalSend:
        """Record the send (with an append's history length) before it goes out."""
        known = None
        if send.mode == APPEND and send.target is not None:
            history = await self._client.get_history(send.target)
            known = len(history.get("entries") or [])
        record = JournalSend(
            send.round, send.mode, send.target, known, send.tag, datetime.now(UTC).isoformat()
        )
        try:
            await self._journal.sending(send.row.send_key, send.repeat_index, record)
        except OSError as error:  # nothing is sent that the journal does not hold
            raise _JournalUnwritable(error) from error
        return record

    async def _request(self, send: "_Send", trace: _RowTrace) -> _Turn:
        """Send once; an answer that may or may not have been stored raises AmbiguousSend."""
        try:
            if self._stream:
                return await self._streamed(send, trace)
            return await self._plain(send)
        except (OutcomeUnknown, StreamCut) as exc:
            raise AmbiguousSend(str(exc), getattr(exc, "conversation_id", None)) from exc
        except RetriesExhausted as exc:
            if exc.status == 429:
                raise
            raise AmbiguousSend(str(exc), None) from exc
        except (Conflict, AmbiguousSend, *STOPS_THE_RUN):
            raise
        except ApiError as exc:
            if exc.status is not None and exc.status >= 500:
                raise AmbiguousSend(str(exc), None) from exc
            return _Turn(send.target, NO_OUTPUT, str(exc))

    async def _plain(self, send: "_Send") -> _Turn:
        if send.mode == START:
            response = await self._poster.start_conversation(send.body)
        elif send.mode == APPEND:
            response = await self._poster.append_to_conversation(send.target, send.body)  # type: ignore[arg-type]
        else:
            response = await self._poster.restart_conversation(send.target, send.body)  # type: ignore[arg-type]
        conversation_id = response.get("conversation_id")
        if conversation_id:
            self._journal.started(send.row.send_key, send.repeat_index, send.round, conversation_id)
        return _Turn(conversation_id, response_output(response))

    async def _streamed(self, send: "_Send", trace: _RowTrace) -> _Turn:
        if send.mode == START:
            events_in = self._poster.stream_start(send.body)
        elif send.mode == APPEND:
            events_in = self._poster.stream_append(send.target, send.body)  # type: ignore[arg-type]
        else:
            events_in = self._poster.stream_restart(send.target, send.body)  # type: ignore[arg-type]
        events: list[StreamEvent] = []
        conversation_id = send.target if send.mode == APPEND else None
        try:
            async for event in events_in:
                events.append(event)
                trace.events.append((trace.attempts, event))
                if event.type == "conversation.response.started" and send.mode != APPEND:
                    conversation_id = event.data.get("conversation_id") or conversation_id
                    if conversation_id:
                        self._journal.started(
                            send.row.send_key, send.repeat_index, send.round, conversation_id
                        )
        except StreamCut as exc:
            raise AmbiguousSend(str(exc), conversation_id) from exc
        summary = summarize_stream(events)
        if trace.ttft_ms is None:
            trace.ttft_ms = summary.ttft_ms
        return _Turn(summary.conversation_id or conversation_id, summary.output, summary.error)


@dataclass(frozen=True)
class _Send:
    """One request of a row: which round, where it goes, and its body."""

    row: PromptRow
    repeat_index: int
    round: int
    mode: str
    target: str | None
    body: dict[str, Any]
    tag: dict[str, str] | None


def _append_options(body: dict[str, Any]) -> dict[str, Any]:
    """What a function-result append keeps of the row's request: completion args, store and
    handoff execution (the keys an append takes)."""
    keys = ("completion_args", "store", "handoff_execution")
    return {key: body[key] for key in keys if key in body}


def _unsent(mode: str, source: str | None, error: str) -> TurnOutcome:
    """An error outcome with no output, for a turn never sent."""
    now = datetime.now(UTC)
    return TurnOutcome(
        mode=mode,
        source_conversation_id=source,
        conversation_id=None,
        status=ERROR,
        error=error,
        output=NO_OUTPUT,
        recovered=False,
        attempts=0,
        ttft_ms=None,
        latency_ms=None,
        started_at=now,
        finished_at=now,
        events=(),
    )

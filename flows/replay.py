"""The replay flow: every row of a prompt set sent to the API, every result and SSE event stored.

One async Prefect flow owns the one ConversationsClient. One coroutine per sequence (a thread's
turns in order, or a single row) runs under a semaphore in an asyncio.TaskGroup; finished rows
are written in batches (a Parquet part and a DuckDB merge per batch task), so a crash loses at
most the rows in flight and a rerun with the same run id picks up where the last one stopped.
"""

import asyncio
import contextlib
import re
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from extract.client import ConversationsClient
from extract.errors import ApiError, Conflict, StreamCut
from extract.events import StreamEvent
from extract.settings import ApiSettings
from load.replay_merge import (
    StoredResult,
    batch_part_name,
    compact_run_parts,
    run_summary,
    store_replay_batch,
    store_replay_run,
    stored_results,
)
from load.warehouse import open_warehouse
from transform.prompts import PromptRow, PromptSequence, group_sequences, parse_prompts
from transform.replay import (
    APPEND,
    ERROR,
    OK,
    START,
    AssistantOutput,
    ReplayItem,
    StreamSummary,
    TurnOutcome,
    event_table,
    recovered_output,
    request_body,
    response_output,
    result_table,
    run_table,
    summarize_stream,
    turn_mode,
)

MISSING_KEY_MESSAGE = (
    "MISTRAL_API_KEY is not set. To replay against the Mistral API: "
    "export MISTRAL_API_KEY=<your key>. To replay against the local emulator instead: "
    "run `convo-etl emulator --port 8000` in another shell, then "
    "export MISTRAL_BASE_URL=http://127.0.0.1:8000 MISTRAL_API_KEY=any-key."
)
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
PREVIOUS_TURN_FAILED = "previous turn failed"
_SUMMARY_COLUMNS = (
    "ok",
    "errors",
    "recovered",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_p50_ms",
    "latency_p95_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
)
STREAM_ATTEMPTS = 3
RECOVERY_POLLS = 3
RECOVERY_POLL_SECONDS = 0.2
CONFLICT_WAITS = (0.25, 0.5, 1.0, 2.0)
NO_OUTPUT = StreamSummary(None, AssistantOutput("", None), False, None, None)


@dataclass(frozen=True)
class ReplaySummary:
    """The closing numbers of a run, printed by the CLI and put in the Prefect artifact."""

    run_id: str
    rows: int
    results: int
    sent: int
    skipped: int
    ok: int
    errors: int
    recovered: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    seconds: float


def new_run_id() -> str:
    """A fresh, sortable run id: UTC time plus a random suffix."""
    return f"replay-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def check_run_id(run_id: str) -> str:
    """The run id if it is safe as a Parquet file name, else a ValueError saying what is allowed."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(
            f"run id {run_id!r} must be 1-100 letters, digits, '-' or '_' (starting alphanumeric)"
        )
    return run_id


@task(name="write-replay-batch", cache_policy=NO_CACHE)
async def write_replay_batch(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    part_name: str,
    results: pa.Table,
    events: pa.Table,
) -> int:
    """Store one batch (Parquet parts + DuckDB merge) off the event loop; returns its row count."""
    await asyncio.to_thread(store_replay_batch, con, data_dir, part_name, results, events)
    return results.num_rows


class ResultSink:
    """Collects finished rows and writes them in batches: when full, or every few seconds."""

    def __init__(
        self,
        write: Callable[[list[ReplayItem]], Awaitable[None]],
        batch_rows: int,
        progress: "RunProgress",
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


class RunProgress:
    """A rich progress bar on stderr: rows done of total, ok / error counts, rate and ETA."""

    def __init__(self, total: int, visible: bool) -> None:
        self.ok = 0
        self.errors = 0
        self._bar = Progress(
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[errors]} errors[/]"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not visible,
        )
        self._task = self._bar.add_task("replay", total=total, ok=0, errors=0, rate="")
        self._started = time.perf_counter()

    def __enter__(self) -> "RunProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def finished(self, ok: bool) -> None:
        """Count a row that ended (ok, error, or skipped as already ok)."""
        if ok:
            self.ok += 1
        else:
            self.errors += 1
        done = self.ok + self.errors
        rate = done / max(time.perf_counter() - self._started, 1e-9)
        self._bar.update(
            self._task, completed=done, ok=self.ok, errors=self.errors, rate=f"{rate:.1f} rows/s"
        )


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
            await sink.add(ReplayItem(row, repeat_index, outcome))
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
                if isinstance(exc, Conflict) and not kept and not events:
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


async def _summary_artifact(summary: ReplaySummary, source_file: str) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    markdown = "\n".join(
        [
            f"# Replay `{summary.run_id}`",
            "",
            f"Prompt set `{source_file}`: {summary.rows} rows, {summary.results} results "
            f"({summary.sent} sent, {summary.skipped} already ok) in {summary.seconds:.1f} s.",
            "",
            "| ok | errors | recovered | prompt tokens | completion tokens | total tokens |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {summary.ok} | {summary.errors} | {summary.recovered} | {summary.prompt_tokens} "
            f"| {summary.completion_tokens} | {summary.total_tokens} |",
            "",
            "| | p50 ms | p95 ms |",
            "|---|---:|---:|",
            f"| latency | {ms(summary.latency_p50_ms)} | {ms(summary.latency_p95_ms)} |",
            f"| time to first token | {ms(summary.ttft_p50_ms)} | {ms(summary.ttft_p95_ms)} |",
        ]
    )
    await acreate_markdown_artifact(
        markdown=markdown, key="replay-summary", description=f"Replay {summary.run_id}"
    )


@flow(name="replay")
async def replay_flow(
    prompts_path: str,
    data_dir: str,
    base_url: str | None = None,
    run_id: str | None = None,
    concurrency: int = 8,
    rps: float | None = None,
    repeat: int = 1,
    stream: bool = True,
    model: str | None = None,
    agent_id: str | None = None,
    batch_rows: int = 100,
    flush_seconds: float = 3.0,
    show_progress: bool = False,
) -> ReplaySummary:
    """Send every row of the prompt CSV (times `repeat`) and store results, events and the run.

    The API key comes from MISTRAL_API_KEY, never from a parameter (Prefect records those).
    """
    clock = time.perf_counter()
    started_at = datetime.now(UTC)
    run_id = check_run_id(run_id or new_run_id())
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    source = Path(prompts_path)
    rows = parse_prompts(source.read_bytes(), source.name, model, agent_id)
    sequences = group_sequences(rows)
    settings = ApiSettings(base_url=base_url) if base_url else ApiSettings()
    if settings.api_key is None:
        raise ValueError(MISSING_KEY_MESSAGE)
    options = {
        "concurrency": concurrency,
        "rps": rps,
        "repeat": repeat,
        "stream": stream,
        "model": model,
        "agent_id": agent_id,
    }
    root = Path(data_dir)
    con = open_warehouse(root)
    try:
        stored = stored_results(con, run_id)

        def run_row(finished: datetime | None, counts: tuple[int, int] | None) -> pa.Table:
            return run_table(
                run_id,
                started_at,
                finished,
                str(source),
                len(rows),
                repeat,
                counts,
                stream,
                settings.base_url,
                options,
            )

        store_replay_run(con, root, run_id, run_row(None, None))
        attempt_stamp = f"{started_at:%Y%m%dT%H%M%S%f}"
        batches = 0

        async def write(items: list[ReplayItem]) -> None:
            nonlocal batches
            batches += 1
            await write_replay_batch(
                con,
                root,
                batch_part_name(run_id, attempt_stamp, batches),
                result_table(run_id, stream, items),
                event_table(run_id, items),
            )

        total = len(rows) * repeat
        config = settings.client_config(concurrency=concurrency, rps=rps)
        with RunProgress(total, show_progress) as progress:
            sink = ResultSink(write, batch_rows, progress)
            async with ConversationsClient(config) as client:
                runner = TurnRunner(client, stream, concurrency)
                ticker = asyncio.create_task(sink.flush_every(flush_seconds))
                try:
                    async with asyncio.TaskGroup() as group:
                        for repeat_index in range(repeat):
                            for sequence in sequences:
                                group.create_task(
                                    runner.run_sequence(
                                        sequence, repeat_index, stored, sink, progress
                                    )
                                )
                finally:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
                    await sink.flush()
        numbers = run_summary(con, run_id)
        store_replay_run(
            con, root, run_id, run_row(datetime.now(UTC), (numbers["ok"], numbers["errors"]))
        )
        await asyncio.to_thread(compact_run_parts, con, root, run_id)
    finally:
        con.close()
    summary = ReplaySummary(
        run_id=run_id,
        rows=len(rows),
        results=numbers["ok"] + numbers["errors"],
        sent=runner.sent,
        skipped=runner.skipped,
        seconds=time.perf_counter() - clock,
        **{key: numbers[key] for key in _SUMMARY_COLUMNS},
    )
    await _summary_artifact(summary, source.name)
    return summary

"""The replay flow: every row of a prompt set sent to the API, every result and SSE event stored.

One async Prefect flow owns the one ConversationsClient. One coroutine per sequence (a thread's
turns in order, or a single row) runs under a semaphore in an asyncio.TaskGroup; finished rows
are written in batches (a Parquet part and a DuckDB merge per batch task), so a crash loses at
most the rows in flight and a rerun with the same run id picks up where the last one stopped.
"""

import asyncio
import time
from contextlib import suppress
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE

from extract.client import ConversationsClient
from extract.urls import redacted_url
from flows import signals
from flows.evals.grade import Judge, grade_run
from flows.evals.prices import read_prices
from flows.hot_phase import hot_phase
from flows.replay.matrix import matrix_variants, variant_rows
from flows.replay.progress import RunProgress
from flows.replay.run_id import check_run_id, new_run_id
from flows.replay.runner import ReplayPolicy, TurnRunner
from flows.replay.sink import ResultSink
from flows.replay.summary import ReplaySummary, summary_markdown
from flows.settings import ClientLimits, load_settings
from load.read_server import serving_reads
from load.replay_journal import SendJournal
from load.replay_merge import (
    batch_part_name,
    compact_run_parts,
    mark_dead_replay_runs_interrupted,
    run_summary,
    store_replay_batch,
    store_replay_run,
    stored_results,
)
from load.warehouse import mark_dead_runs_interrupted, open_warehouse
from transform.prompts import group_sequences
from transform.replay import ReplayItem, event_table, result_table, run_table, run_totals

# Sequences under way (sending, or waiting for a slot or their conversation) per in-flight slot.
ADMITTED_PER_SLOT = 4

MISSING_KEY_MESSAGE = (
    "MISTRAL_API_KEY is not set. To replay against the Mistral API: "
    "export MISTRAL_API_KEY=<your key>. To replay against the local emulator instead: "
    "run `convo-etl emulator --port 8000` in another shell, then "
    "export MISTRAL_BASE_URL=http://127.0.0.1:8000 MISTRAL_API_KEY=any-key."
)


# Rows per stored batch. Each batch is a Prefect task run, whose engine and event service hold
# the GIL ~25 ms: at 10,000 prompts and 64 in flight, batches of 100 kept the replay at 1.39x its
# bound, and batches of 500 at 1.22x. A batch that does not fill is stored after flush_seconds.
REPLAY_BATCH_ROWS = 500
# Young garbage collections every this many new objects, while rows are parsed and streamed:
# streamed events wait for their batch, and collections every 10,000 took 0.42 s of the event
# loop at 10,000 prompts (0.03 s with this).
REPLAY_YOUNG_OBJECTS = 50_000


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
    model: str | list[str] | None = None,
    agent_id: str | list[str] | None = None,
    batch_rows: int = REPLAY_BATCH_ROWS,
    flush_seconds: float = 3.0,
    show_progress: bool = False,
    tag: bool = True,
    recover_timeout: float = 600.0,
    max_tool_rounds: int = 8,
    judge_model: str | None = None,
    prices_path: str | None = None,
    limits: ClientLimits | None = None,
) -> ReplaySummary:
    """Send every row of the prompt CSV (times `repeat`) and store results, events and the run;
    then grade the results against the rows' checks (llm-rubric too, given a `judge_model`).

    Several models or agents make a matrix run: the prompt set once per variant.
    The API key comes from MISTRAL_API_KEY, never from a parameter (Prefect records those).
    """
    signals.install()
    clock = time.perf_counter()
    started_at = datetime.now(UTC)
    run_id = check_run_id(run_id or new_run_id())
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    source = Path(prompts_path)
    data = source.read_bytes()
    # Each variant's rows are parsed once, before anything is sent, with the collector kept
    # off the objects Prefect made: its full collections made up 0.12 s of 10,000 rows' 0.32 s.
    with hot_phase(young_objects=REPLAY_YOUNG_OBJECTS):
        variant_sets = {
            variant: variant_rows(data, source.name, variant, row_model, row_agent)
            for variant, row_model, row_agent in matrix_variants(model, agent_id)
        }
        rows = next(iter(variant_sets.values()))
        checks_by_row = {row.row_id: row.checks for row in rows}
        sequences = {variant: group_sequences(rows_of) for variant, rows_of in variant_sets.items()}
    prices = read_prices(prices_path)
    settings = load_settings(data_dir, base_url)
    if settings.api.api_key is None:
        raise ValueError(MISSING_KEY_MESSAGE)
    options = {
        "concurrency": concurrency,
        "rps": rps,
        "repeat": repeat,
        "stream": stream,
        "model": model,
        "agent_id": agent_id,
        "tag": tag,
        "recover_timeout": recover_timeout,
        "max_tool_rounds": max_tool_rounds,
    }
    root = settings.data_dir
    con = open_warehouse(root, limits=settings.duckdb_limits)
    journal = SendJournal(root, run_id)
    reads = serving_reads(con, root)

    def record_run(status: str, counts: tuple[int, int] | None) -> None:
        finished = None if status == "running" else datetime.now(UTC)
        store_replay_run(
            con,
            root,
            run_id,
            run_table(
                run_id,
                started_at,
                finished,
                str(source),
                len(rows),
                repeat,
                counts,
                stream,
                redacted_url(settings.api.base_url),
                options,
                status,
            ),
        )

    status = "failed"
    try:
        mark_dead_runs_interrupted(con)
        mark_dead_replay_runs_interrupted(con, root)
        stored = stored_results(con, run_id)
        record_run("running", None)
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
            await journal.stored([(item.row.send_key, item.repeat_index) for item in items])

        total = len(rows) * repeat * len(variant_sets)
        jobs = (
            (sequence, repeat_index, stored.get(variant, {}))
            for variant, variant_sequences in sequences.items()
            for repeat_index in range(repeat)
            for sequence in variant_sequences
        )
        config = settings.api.client_config(
            concurrency=concurrency, rps=rps, **(limits or ClientLimits()).config_fields()
        )
        # Sends go through a client that never retries a 5xx or a lost connection by itself:
        # such a send may have landed, and the runner looks it up before any resend.
        send_config = replace(config, max_retries=0)
        policy = ReplayPolicy(run_id, tag, recover_timeout, max_tool_rounds)
        # Streamed rows leave many short-lived cycles: with the default thresholds, full
        # collections rescanning every object Prefect made took 0.28 s of a 1,000-row run.
        with (
            RunProgress(total, show_progress) as progress,
            hot_phase(young_objects=REPLAY_YOUNG_OBJECTS),
        ):
            async with (
                ResultSink(write, batch_rows, flush_seconds, progress) as sink,
                ConversationsClient(config) as client,
                ConversationsClient(send_config) as poster,
                asyncio.TaskGroup() as group,
            ):
                runner = TurnRunner(client, poster, stream, concurrency, journal, policy)
                # Sequences start as earlier ones end, a few per slot: a task per row of a
                # large prompt set, all waiting at once, would grow memory with its size.
                admitted = asyncio.Semaphore(ADMITTED_PER_SLOT * concurrency)
                for sequence, repeat_index, done in jobs:
                    await admitted.acquire()
                    if runner.stopped_by is not None:
                        break
                    task = group.create_task(
                        runner.run_sequence(sequence, repeat_index, done, sink, progress)
                    )
                    task.add_done_callback(lambda _: admitted.release())
        if runner.stopped_by is not None:
            # The rows already stored stay; the ones not sent are sent when the run resumes.
            raise runner.stopped_by
        totals = run_totals(run_summary(con, run_id))
        record_run("completed", (totals.ok, totals.errors))
        status = "completed"
        if stored:
            # Only a resumed run replaces rows; a first attempt's batch parts hold each row once.
            await asyncio.to_thread(compact_run_parts, con, root, run_id)
        grading = None
        if any(checks.checks for checks in checks_by_row.values()):
            judge = None
            if judge_model is not None:
                judge = Judge(judge_model, settings.api.client_config(concurrency=concurrency))
            grading = await grade_run(con, root, run_id, checks_by_row, judge, prices)
    except signals.STOP_SIGNALS:
        status = "interrupted"
        raise
    finally:
        if status != "completed":
            # The cause in flight is the one to report: a disk that refused the results may
            # refuse this row too, and a later writer then marks the run interrupted.
            with suppress(OSError, duckdb.Error):
                totals = run_totals(run_summary(con, run_id))
                record_run(status, (totals.ok, totals.errors))
        try:
            journal.close()  # raises what stopped its writer: the warehouse closes all the same
        finally:
            reads.close()
            con.close()
    summary = ReplaySummary(
        **asdict(totals),
        run_id=run_id,
        rows=len(rows),
        sent=runner.sent,
        skipped=runner.skipped,
        seconds=time.perf_counter() - clock,
        grading=grading,
        rate_limited=client.stats.rate_limited + poster.stats.rate_limited,
        pace_rps=poster.stats.pace_rps or client.stats.pace_rps,
    )
    await acreate_markdown_artifact(
        markdown=summary_markdown(summary, source.name),
        key="replay-summary",
        description=f"Replay {run_id}",
    )
    return summary

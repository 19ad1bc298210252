"""The replay flow: every row of a prompt set sent to the API, every result and SSE event stored.

One async Prefect flow owns the one ConversationsClient. One coroutine per sequence (a thread's
turns in order, or a single row) runs under a semaphore in an asyncio.TaskGroup; finished rows
are written in batches (a Parquet part and a DuckDB merge per batch task), so a crash loses at
most the rows in flight and a rerun with the same run id picks up where the last one stopped.
"""

import asyncio
import time
from dataclasses import asdict
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
from flows.gc_tuning import rare_full_collections
from flows.replay.progress import RunProgress
from flows.replay.run_id import check_run_id, new_run_id
from flows.replay.runner import TurnRunner
from flows.replay.sink import ResultSink
from flows.replay.summary import ReplaySummary, summary_markdown
from flows.settings import ClientLimits, load_settings
from load.replay_merge import (
    batch_part_name,
    compact_run_parts,
    run_summary,
    store_replay_batch,
    store_replay_run,
    stored_results,
)
from load.warehouse import open_warehouse
from transform.prompts import group_sequences, parse_prompts
from transform.replay import ReplayItem, event_table, result_table, run_table, run_totals

MISSING_KEY_MESSAGE = (
    "MISTRAL_API_KEY is not set. To replay against the Mistral API: "
    "export MISTRAL_API_KEY=<your key>. To replay against the local emulator instead: "
    "run `convo-etl emulator --port 8000` in another shell, then "
    "export MISTRAL_BASE_URL=http://127.0.0.1:8000 MISTRAL_API_KEY=any-key."
)


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
    model: str | None = None,
    agent_id: str | None = None,
    batch_rows: int = 100,
    flush_seconds: float = 3.0,
    show_progress: bool = False,
    limits: ClientLimits | None = None,
) -> ReplaySummary:
    """Send every row of the prompt CSV (times `repeat`) and store results, events and the run.

    The API key comes from MISTRAL_API_KEY, never from a parameter (Prefect records those).
    """
    signals.install()
    clock = time.perf_counter()
    started_at = datetime.now(UTC)
    run_id = check_run_id(run_id or new_run_id())
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    source = Path(prompts_path)
    rows = parse_prompts(source.read_bytes(), source.name, model, agent_id)
    sequences = group_sequences(rows)
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
    }
    root = settings.data_dir
    con = open_warehouse(root, limits=settings.duckdb_limits)
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
                redacted_url(settings.api.base_url),
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
        config = settings.api.client_config(
            concurrency=concurrency, rps=rps, **(limits or ClientLimits()).config_fields()
        )
        # Streamed rows leave many short-lived cycles: with the default thresholds, full
        # collections rescanning every object Prefect made took 0.28 s of a 1,000-row run.
        with RunProgress(total, show_progress) as progress, rare_full_collections():
            async with (
                ResultSink(write, batch_rows, flush_seconds, progress) as sink,
                ConversationsClient(config) as client,
                asyncio.TaskGroup() as group,
            ):
                runner = TurnRunner(client, stream, concurrency)
                for repeat_index in range(repeat):
                    for sequence in sequences:
                        group.create_task(
                            runner.run_sequence(sequence, repeat_index, stored, sink, progress)
                        )
        totals = run_totals(run_summary(con, run_id))
        store_replay_run(con, root, run_id, run_row(datetime.now(UTC), (totals.ok, totals.errors)))
        if stored:
            # Only a resumed run replaces rows; a first attempt's batch parts hold each row once.
            await asyncio.to_thread(compact_run_parts, con, root, run_id)
    finally:
        con.close()
    summary = ReplaySummary(
        **asdict(totals),
        run_id=run_id,
        rows=len(rows),
        sent=runner.sent,
        skipped=runner.skipped,
        seconds=time.perf_counter() - clock,
        rate_limited=client.stats.rate_limited,
        pace_rps=client.stats.pace_rps,
    )
    await acreate_markdown_artifact(
        markdown=summary_markdown(summary, source.name),
        key="replay-summary",
        description=f"Replay {run_id}",
    )
    return summary

"""A replay's outcomes as Arrow rows: replay_results, replay_events and replay_runs.

Nothing here does I/O. The request bodies are built in transform.replay_requests, the output is
read back in transform.replay_outputs; these functions turn the outcomes into rows.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from transform.prompts import PromptRow
from transform.replay_outputs import AssistantOutput, StreamEvent
from transform.replay_requests import RESTART
from transform.replay_schemas import REPLAY_EVENTS, REPLAY_RESULTS, REPLAY_RUNS

OK, ERROR = "ok", "error"


@dataclass(frozen=True)
class TurnOutcome:
    """Everything one (row, repeat) produced, ready to become a replay_results row."""

    mode: str
    source_conversation_id: str | None
    conversation_id: str | None
    status: str
    error: str | None
    output: AssistantOutput
    recovered: bool
    attempts: int
    ttft_ms: float | None
    latency_ms: float | None
    started_at: datetime
    finished_at: datetime
    events: tuple[tuple[int, StreamEvent], ...] = ()


@dataclass(frozen=True)
class ReplayItem:
    """One result to store: the CSV row, which repeat it was, and its outcome."""

    row: PromptRow
    repeat_index: int
    outcome: TurnOutcome


@dataclass(frozen=True)
class RunTotals:
    """A run's counts, tokens and ok-result percentiles: what the CLI, artifact and report show."""

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

    @property
    def results(self) -> int:
        """Every stored result of the run, ok or not."""
        return self.ok + self.errors


def run_totals(summary: Mapping[str, Any]) -> RunTotals:
    """RunTotals from a ``sql/replay/run_summary.sql`` row; a missing count or sum counts as 0."""
    return RunTotals(
        ok=int(summary["ok"] or 0),
        errors=int(summary["errors"] or 0),
        recovered=int(summary["recovered"] or 0),
        prompt_tokens=int(summary["prompt_tokens"] or 0),
        completion_tokens=int(summary["completion_tokens"] or 0),
        total_tokens=int(summary["total_tokens"] or 0),
        latency_p50_ms=summary["latency_p50_ms"],
        latency_p95_ms=summary["latency_p95_ms"],
        ttft_p50_ms=summary["ttft_p50_ms"],
        ttft_p95_ms=summary["ttft_p95_ms"],
    )


def result_table(run_id: str, stream: bool, items: Sequence[ReplayItem]) -> pa.Table:
    """replay_results rows, one per (row, repeat)."""
    rows = []
    for item in items:
        row, outcome = item.row, item.outcome
        usage = outcome.output.usage
        rows.append(
            {
                "run_id": run_id,
                "row_id": row.row_id,
                "repeat_index": item.repeat_index,
                "row_number": row.row_number,
                "mode": outcome.mode,
                "source_conversation_id": outcome.source_conversation_id,
                "from_entry_id": row.from_entry_id if outcome.mode == RESTART else None,
                "conversation_id": outcome.conversation_id,
                "status": outcome.status,
                "error": outcome.error,
                "recovered": outcome.recovered,
                "attempts": outcome.attempts,
                "output_text": outcome.output.text or (None if outcome.status == ERROR else ""),
                "output_entry_id": outcome.output.entry_id,
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "total_tokens": usage.get("total_tokens"),
                "ttft_ms": outcome.ttft_ms,
                "latency_ms": outcome.latency_ms,
                "events": len(outcome.events),
                "started_at": outcome.started_at,
                "finished_at": outcome.finished_at,
                "stream": stream,
                "prompt": row.prompt,
                "model": row.model,
                "agent_id": row.agent_id,
                "thread": row.thread,
                "extra": orjson.dumps(row.extra).decode(),
                "finish": outcome.output.finish,
                "function_calls": orjson.dumps(outcome.output.function_calls).decode(),
                "outputs": orjson.dumps(outcome.output.entries).decode(),
                "usage": orjson.dumps(usage).decode(),
                "last_agent_id": outcome.output.agent_id,
                "variant": row.variant,
            }
        )
    return pa.Table.from_pylist(rows, schema=REPLAY_RESULTS)


def event_table(run_id: str, items: Sequence[ReplayItem]) -> pa.Table:
    """replay_events rows: every SSE event of every attempt, numbered per (row, repeat).

    Built a column at a time: it runs on the flow's event loop, and a dict per event took 1.7x
    as long.
    """
    counts = [(item, len(item.outcome.events)) for item in items]
    events = [event for item in items for _, event in item.outcome.events]
    columns = {
        "run_id": pa.repeat(run_id, len(events)),
        "row_id": [item.row.row_id for item, count in counts for _ in range(count)],
        "repeat_index": [item.repeat_index for item, count in counts for _ in range(count)],
        "seq": [seq for _, count in counts for seq in range(count)],
        "attempt": [attempt for item in items for attempt, _ in item.outcome.events],
        "event_type": [event.type for event in events],
        "received_at": [event.received_at for event in events],
        "elapsed_ms": [event.elapsed_ms for event in events],
        "data": [_json_text(event.raw) for event in events],
        "variant": [item.row.variant for item, count in counts for _ in range(count)],
    }
    return pa.Table.from_pydict(columns, schema=REPLAY_EVENTS)


def _json_text(raw: str) -> str:
    """The raw SSE data when it is JSON, else the raw text as a JSON string: nothing is lost."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return orjson.dumps(raw).decode()
    return raw


def run_table(
    run_id: str,
    started_at: datetime,
    finished_at: datetime | None,
    source_file: str,
    rows: int,
    repeat: int,
    counts: tuple[int, int] | None,
    stream: bool,
    base_url: str,
    options: dict[str, Any],
    status: str,
) -> pa.Table:
    """The one replay_runs row of a run; counts (ok, errors) are None until it ends.

    ``status``: running, then completed, failed (an error stopped it) or interrupted (a signal,
    or a later writer finding it still running).
    """
    ok, errors = counts if counts is not None else (None, None)
    row = {
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "source_file": source_file,
        "rows": rows,
        "repeat": repeat,
        "ok": ok,
        "errors": errors,
        "stream": stream,
        "base_url": base_url,
        "options": orjson.dumps(options).decode(),
        "status": status,
    }
    return pa.Table.from_pylist([row], schema=REPLAY_RUNS)

"""Pure steps of a replay: the request body of a row, the output read back, and the Arrow rows.

Nothing here does I/O: the flow sends the bodies, hands back the JSON or the stream events it
received, and these functions turn them into replay_results / replay_events / replay_runs rows.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from extract.events import StreamEvent
from transform.prompts import PromptRow
from transform.replay_schemas import REPLAY_EVENTS, REPLAY_RESULTS, REPLAY_RUNS

START, APPEND, RESTART = "start", "append", "restart"
OK, ERROR = "ok", "error"
OUTPUT_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class AssistantOutput:
    """The assistant's answer to one turn: its text, the last message entry id, and usage."""

    text: str
    entry_id: str | None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamSummary:
    """What a list of stream events says: the conversation, the output so far, how it ended."""

    conversation_id: str | None
    output: AssistantOutput
    done: bool
    error: str | None
    ttft_ms: float | None


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
    """RunTotals from a ``sql/replay_run_summary.sql`` row; a missing count or sum counts as 0."""
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


def turn_mode(row: PromptRow, later_turn: bool) -> str:
    """Start, append or restart: a thread's later turns append to the thread's conversation."""
    if later_turn:
        return APPEND
    if row.conversation_id is None:
        return START
    return RESTART if row.from_entry_id else APPEND


def request_body(row: PromptRow, mode: str) -> dict[str, Any]:
    """The JSON body for the row's operation (the client adds `stream`)."""
    body: dict[str, Any] = {"inputs": row.prompt}
    if row.completion_args:
        body["completion_args"] = dict(row.completion_args)
    if mode == RESTART:
        body["from_entry_id"] = row.from_entry_id
        if row.metadata is not None:
            body["metadata"] = row.metadata
    if mode != START:
        return body
    target = {"agent_id": row.agent_id} if row.agent_id else {"model": row.model}
    optional = {
        "instructions": row.instructions,
        "name": row.name,
        "description": row.description,
        "metadata": row.metadata,
    }
    return {**body, **target, **{k: v for k, v in optional.items() if v is not None}}


def content_text(content: Any) -> str:
    """The text of a message content: a string, one chunk, or a list of chunks (text only)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text", "") if content.get("type", "text") == "text" else ""
    if isinstance(content, list):
        return "".join(content_text(chunk) for chunk in content)
    return ""


def summarize_stream(events: Sequence[StreamEvent]) -> StreamSummary:
    """Assemble the streamed output per message entry and note how (and whether) it ended."""
    conversation_id = None
    texts: dict[str, list[str]] = {}
    usage: dict[str, Any] = {}
    done, error, ttft_ms = False, None, None
    for event in events:
        data = event.data
        if event.type == "conversation.response.started":
            conversation_id = data.get("conversation_id") or conversation_id
        elif event.type == "message.output.delta":
            if ttft_ms is None:
                ttft_ms = event.elapsed_ms
            texts.setdefault(str(data.get("id")), []).append(content_text(data.get("content")))
        elif event.type == "conversation.response.done":
            done, usage = True, data.get("usage") or {}
        elif event.type == "conversation.response.error":
            error = f"conversation.response.error {data.get('code')}: {data.get('message')}"
    output = AssistantOutput(
        text=OUTPUT_SEPARATOR.join("".join(parts) for parts in texts.values()),
        entry_id=next(reversed(texts), None),
        usage=usage,
    )
    return StreamSummary(conversation_id, output, done, error, ttft_ms)


def response_output(response: dict[str, Any]) -> AssistantOutput:
    """The output of a non-streamed ConversationResponse."""
    return _output_of_entries(response.get("outputs") or [], response.get("usage") or {})


def recovered_output(history: dict[str, Any], prompt: str) -> AssistantOutput | None:
    """The answer stored after our input (the last message.input equal to the prompt), if any."""
    entries = history.get("entries") or []
    ours = [
        position
        for position, entry in enumerate(entries)
        if entry.get("type") == "message.input" and content_text(entry.get("content")) == prompt
    ]
    if not ours:
        return None
    output = _output_of_entries(entries[ours[-1] + 1 :], {})
    return output if output.entry_id is not None else None


def _output_of_entries(entries: Iterable[dict[str, Any]], usage: dict[str, Any]) -> AssistantOutput:
    messages = [e for e in entries if e.get("type", "message.output") == "message.output"]
    return AssistantOutput(
        text=OUTPUT_SEPARATOR.join(content_text(m.get("content")) for m in messages),
        entry_id=messages[-1].get("id") if messages else None,
        usage=usage,
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
) -> pa.Table:
    """The one replay_runs row of a run; counts (ok, errors) are None until it finishes."""
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
    }
    return pa.Table.from_pylist([row], schema=REPLAY_RUNS)

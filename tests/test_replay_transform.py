"""Replay transforms: request bodies, assembled stream output, history recovery, Arrow rows."""

from datetime import UTC, datetime

import orjson

from extract.events import StreamEvent
from transform.prompts import PromptRow
from transform.replay import ReplayItem, TurnOutcome, event_table, result_table
from transform.replay_outputs import (
    AssistantOutput,
    history_turn,
    response_output,
    summarize_stream,
)
from transform.replay_requests import APPEND, RESTART, START, request_body, turn_mode
from transform.replay_schemas import REPLAY_EVENTS, REPLAY_RESULTS

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(kind: str, data: dict, elapsed_ms: float = 1.0, raw: str | None = None) -> StreamEvent:
    body = {"type": kind, **data}
    return StreamEvent(kind, body, raw or orjson.dumps(body).decode(), AT, elapsed_ms)


def test_modes_follow_the_row_and_its_place_in_a_thread() -> None:
    new = PromptRow(1, "1", "p", model="m")
    named = PromptRow(2, "2", "p", conversation_id="conv_1")
    branch = PromptRow(3, "3", "p", conversation_id="conv_1", from_entry_id="msg_1")
    assert [turn_mode(new, False), turn_mode(named, False), turn_mode(branch, False)] == [
        START,
        APPEND,
        RESTART,
    ]
    assert turn_mode(new, later_turn=True) == APPEND


def test_request_bodies_carry_only_what_each_operation_takes() -> None:
    row = PromptRow(
        1,
        "1",
        "Hi",
        model="m",
        instructions="Be brief.",
        metadata={"k": 1},
        completion_args={"temperature": 0.2, "max_tokens": 9},
        conversation_id="conv_1",
        from_entry_id="msg_1",
    )
    assert request_body(row, START) == {
        "inputs": "Hi",
        "completion_args": {"temperature": 0.2, "max_tokens": 9},
        "model": "m",
        "instructions": "Be brief.",
        "metadata": {"k": 1},
    }
    assert request_body(row, APPEND) == {
        "inputs": "Hi",
        "completion_args": {"temperature": 0.2, "max_tokens": 9},
    }
    assert request_body(row, RESTART) == {
        "inputs": "Hi",
        "completion_args": {"temperature": 0.2, "max_tokens": 9},
        "from_entry_id": "msg_1",
        "metadata": {"k": 1},
    }
    agent_row = PromptRow(2, "2", "Yo", agent_id="ag_1")
    assert request_body(agent_row, START) == {"inputs": "Yo", "agent_id": "ag_1"}


def test_a_stream_is_assembled_per_entry_with_chunks_and_usage() -> None:
    events = [
        event("conversation.response.started", {"conversation_id": "conv_9"}, 2.0),
        event("tool.execution.started", {"id": "tool_exec_1"}, 3.0),
        event("message.output.delta", {"id": "msg_1", "content": "Hel"}, 7.5),
        event("message.output.delta", {"id": "msg_1", "content": {"type": "text", "text": "lo"}}),
        event("message.output.delta", {"id": "msg_1", "content": {"type": "tool_reference"}}),
        event("message.output.delta", {"id": "msg_2", "content": "Bye"}),
        event("conversation.response.done", {"usage": {"prompt_tokens": 3, "total_tokens": 5}}),
    ]
    summary = summarize_stream(events)
    assert summary.conversation_id == "conv_9"
    output = summary.output
    assert (output.text, output.entry_id, output.usage) == (
        "Hello\n\nBye",
        "msg_2",
        {"prompt_tokens": 3, "total_tokens": 5},
    )
    assert [entry["type"] for entry in output.entries] == [
        "tool.execution",
        "message.output",
        "message.output",
    ]
    assert (summary.done, summary.error, summary.ttft_ms) == (True, None, 7.5)


def test_an_error_event_ends_the_stream_with_its_message() -> None:
    summary = summarize_stream(
        [
            event("conversation.response.started", {"conversation_id": "conv_9"}),
            event("message.output.delta", {"id": "msg_1", "content": "Par"}),
            event("conversation.response.error", {"message": "model overloaded", "code": 3000}),
        ]
    )
    assert summary.error == "conversation.response.error 3000: model overloaded"
    assert (summary.done, summary.output.text) == (False, "Par")


def test_a_response_and_a_history_give_the_same_output() -> None:
    outputs = [
        {"type": "tool.execution", "id": "tool_exec_1"},
        {"type": "message.output", "id": "msg_2", "content": [{"type": "text", "text": "A"}]},
    ]
    response = {"conversation_id": "conv_1", "outputs": outputs, "usage": {"total_tokens": 4}}
    assert response_output(response) == AssistantOutput(
        "A", "msg_2", {"total_tokens": 4}, tuple(outputs)
    )
    history = {
        "entries": [
            {"type": "message.input", "id": "msg_0", "content": "Q"},
            {"type": "message.output", "id": "msg_1", "content": "old answer"},
            {"type": "message.input", "id": "msg_x", "content": [{"type": "text", "text": "Q"}]},
            *outputs,
        ]
    }
    assert history_turn(history) == AssistantOutput("A", "msg_2", {}, tuple(outputs))
    assert history_turn(history, known_entries=2) == AssistantOutput(
        "A", "msg_2", {}, tuple(outputs)
    )
    assert history_turn(history, known_entries=5) is None


def test_result_and_event_rows_follow_the_schemas() -> None:
    row = PromptRow(4, "r4", "Q", model="m", thread="t", extra={"team": "eval"})
    outcome = TurnOutcome(
        mode=START,
        source_conversation_id=None,
        conversation_id="conv_1",
        status="ok",
        error=None,
        output=AssistantOutput("A", "msg_1", {"prompt_tokens": 1, "completion_tokens": 2}),
        recovered=True,
        attempts=1,
        ttft_ms=3.0,
        latency_ms=9.0,
        started_at=AT,
        finished_at=AT,
        events=(
            (1, event("conversation.response.started", {"conversation_id": "conv_1"})),
            (1, event("odd.event", {}, raw="not json")),
        ),
    )
    items = [ReplayItem(row, 2, outcome)]
    results = result_table("run", True, items)
    assert results.schema == REPLAY_RESULTS
    (stored,) = results.to_pylist()
    assert stored | {"started_at": None, "finished_at": None} == {
        "run_id": "run",
        "row_id": "r4",
        "repeat_index": 2,
        "row_number": 4,
        "mode": "start",
        "source_conversation_id": None,
        "from_entry_id": None,
        "conversation_id": "conv_1",
        "status": "ok",
        "error": None,
        "recovered": True,
        "attempts": 1,
        "output_text": "A",
        "output_entry_id": "msg_1",
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": None,
        "ttft_ms": 3.0,
        "latency_ms": 9.0,
        "events": 2,
        "started_at": None,
        "finished_at": None,
        "stream": True,
        "prompt": "Q",
        "model": "m",
        "agent_id": None,
        "thread": "t",
        "extra": '{"team":"eval"}',
        "finish": None,
        "function_calls": "[]",
        "outputs": "[]",
        "usage": '{"prompt_tokens":1,"completion_tokens":2}',
        "last_agent_id": None,
        "variant": "",
    }
    events = event_table("run", items)
    assert events.schema == REPLAY_EVENTS
    assert [(e["seq"], e["attempt"], e["event_type"], e["data"]) for e in events.to_pylist()] == [
        (0, 1, "conversation.response.started", outcome.events[0][1].raw),
        (1, 1, "odd.event", '"not json"'),
    ]

"""The analytics views answer their questions with the right numbers on known data."""

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from load.replay_merge import store_replay_batch
from load.warehouse import merge_export_batch, open_warehouse
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks
from transform.replay_schemas import REPLAY_EVENTS, REPLAY_RESULTS

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_CONV = "conv_00000000000000000000000000000001"
AGENT_CONV = "conv_00000000000000000000000000000002"
SMALL_CONV = "conv_00000000000000000000000000000003"
AGENT_A = "ag_0000000000000000000000000000000a"
AGENT_B = "ag_0000000000000000000000000000000b"
LARGE = "mistral-large-latest"
SMALL = "mistral-small-latest"
CODESTRAL = "codestral-latest"


def _fixture(name: str) -> object:
    return orjson.loads((FIXTURES / name).read_bytes())


def _codestral(number: int, length: int) -> tuple[dict, list[dict]]:
    """A codestral conversation of ``length`` user messages, all on 2026-11-22."""
    conversation = {
        "id": f"conv_c{number}",
        "model": CODESTRAL,
        "created_at": "2026-11-22T12:00:00Z",
        "updated_at": f"2026-11-22T12:00:0{number}Z",
    }
    entries = [
        {
            "id": f"msg_{number}_{i}",
            "type": "message.input",
            "role": "user",
            "content": f"q{i}",
            "created_at": f"2026-11-22T12:00:0{i}Z",
        }
        for i in range(length)
    ]
    return conversation, entries


@pytest.fixture
def con(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse holding the recorded fixtures plus three codestral conversations."""
    conversations = _fixture("conversations_list.json")
    histories = {
        MODEL_CONV: _fixture("history_model.json")["entries"],
        AGENT_CONV: _fixture("history_agent.json")["entries"],
        SMALL_CONV: [],
    }
    for number, length in ((1, 1), (2, 3), (3, 8)):
        conversation, entries = _codestral(number, length)
        conversations.append(conversation)
        histories[conversation["id"]] = entries
    connection = open_warehouse(data_dir)
    merge_export_batch(
        connection,
        flatten_conversations(conversations, "run-1"),
        flatten_histories(histories.items(), "run-1"),
        flatten_histories([], "run-1"),
        flatten_histories_chunks(histories.items(), "run-1"),
    )
    return connection


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_daily_usage(con: duckdb.DuckDBPyConnection) -> None:
    assert _rows(con, "SELECT * FROM daily_usage") == [
        ("default", date(2026, 11, 22), "model", CODESTRAL, None, 3, 3, 12, 12, 0),
        ("default", date(2026, 11, 23), "model", SMALL, None, 0, 1, 0, 0, 0),
        ("default", date(2026, 11, 24), "model", LARGE, None, 1, 1, 1, 1, 0),
        ("default", date(2026, 11, 25), "agent", None, AGENT_A, 1, 1, 5, 2, len("Refunded.")),
        (
            "default",
            date(2026, 11, 25),
            "model",
            LARGE,
            None,
            1,
            0,
            5,
            2,
            len("It is 12°C and cloudy."),
        ),
    ]


def test_tool_usage(con: duckdb.DuckDBPyConnection) -> None:
    assert _rows(con, "SELECT tool, kind, calls, conversations, last_call_at FROM tool_usage") == [
        ("get_weather", "function", 1, 1, datetime(2026, 11, 25, 0, 0, 0, 100000, tzinfo=UTC)),
        ("lookup_order", "function", 1, 1, datetime(2026, 11, 25, 9, 0, 2, tzinfo=UTC)),
        ("web_search", "builtin_tool", 1, 1, datetime(2026, 11, 25, 0, 0, 0, 400000, tzinfo=UTC)),
    ]


def test_handoffs(con: duckdb.DuckDBPyConnection) -> None:
    assert _rows(con, "SELECT * FROM handoffs") == [
        ("default", AGENT_A, "Support triage", AGENT_B, "Billing helper", 1, 1)
    ]


def test_conversation_lengths(con: duckdb.DuckDBPyConnection) -> None:
    assert _rows(con, "SELECT * FROM conversation_lengths") == [
        ("default", "0", 0, 1),
        ("default", "1", 1, 1),
        ("default", "2-3", 2, 1),
        ("default", "4-7", 4, 2),
        ("default", "8-15", 8, 1),
    ]


def test_latest_conversations(con: duckdb.DuckDBPyConnection) -> None:
    rows = _rows(
        con, "SELECT id, kind, entries, first_user_message FROM latest_conversations LIMIT 4"
    )
    assert rows == [
        (AGENT_CONV, "agent", 5, "I was charged twice."),
        (MODEL_CONV, "model", 6, "What's the weather in Paris?\x00"),
        (SMALL_CONV, "model", 0, None),
        ("conv_c3", "model", 8, "q0"),
    ]


def test_model_agent_summary(con: duckdb.DuckDBPyConnection) -> None:
    rows = _rows(
        con,
        "SELECT kind, model, agent_id, agent_name, conversations, entries, messages,"
        " function_calls, tool_executions, handoffs, output_chars, avg_entries_per_conversation"
        " FROM model_agent_summary",
    )
    assert rows == [
        ("model", CODESTRAL, None, None, 3, 12, 12, 0, 0, 0, 0, 4.0),
        ("agent", None, AGENT_A, "Support triage", 1, 5, 2, 1, 0, 1, 9, 5.0),
        ("model", LARGE, None, None, 1, 6, 3, 1, 1, 0, 22, 6.0),
        ("model", SMALL, None, None, 1, 0, 0, 0, 0, 0, 0, 0.0),
    ]


def _replay_result(
    row_id: str,
    started_at: str,
    conversation_id: str | None,
    tokens: tuple[int, int] | None,
    *,
    run_id: str = "r1",
    model: str | None = None,
    agent_id: str | None = None,
    source: str | None = None,
    status: str = "ok",
) -> dict:
    """One replay_results row with only what daily_tokens reads set to something telling."""
    started = datetime.fromisoformat(started_at)
    prompt, completion = tokens if tokens is not None else (None, None)
    return {
        "run_id": run_id,
        "row_id": row_id,
        "repeat_index": 0,
        "row_number": 1,
        "mode": "append" if source else "start",
        "source_conversation_id": source,
        "conversation_id": conversation_id,
        "status": status,
        "recovered": tokens is None and status == "ok",
        "attempts": 1,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": None if tokens is None else prompt + completion,
        "events": 0,
        "started_at": started,
        "finished_at": started,
        "stream": True,
        "prompt": row_id,
        "model": model,
        "agent_id": agent_id,
        "extra": "{}",
        "variant": "",
    }


def test_daily_tokens(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    thread = "conv_replay_thread"
    results = [
        _replay_result("s1", "2026-11-25T10:00:00Z", thread, (10, 20), model=SMALL),
        # A thread's later turn names no model: it counts under its conversation's.
        _replay_result("s2", "2026-11-25T10:00:05Z", thread, (5, 15), source=thread),
        _replay_result("s3", "2026-11-25T23:59:59Z", "conv_s3", (1, 2), model=SMALL),
        # Recovered from history after a cut stream: a turn, but no usage.
        _replay_result("cut", "2026-11-25T11:00:00Z", "conv_cut", None, model=SMALL),
        # Failed turns are not counted.
        _replay_result("err", "2026-11-25T12:00:00Z", "conv_e", None, model=SMALL, status="error"),
        _replay_result("ag", "2026-11-26T00:00:01Z", "conv_ag", (7, 8), agent_id=AGENT_B),
        # An append to an exported conversation: the export knows its model.
        _replay_result("ap", "2026-11-26T09:00:00Z", MODEL_CONV, (100, 50), source=MODEL_CONV),
        # A restart's new conversation counts under the agent of the one it branched from.
        _replay_result("rs", "2026-11-26T09:30:00Z", "conv_rs", (3, 4), source=AGENT_CONV),
        _replay_result("s1", "2026-11-25T18:00:00Z", "conv_r2", (10, 20), run_id="r2", model=SMALL),
    ]
    store_replay_batch(
        con,
        data_dir,
        "tokens",
        pa.Table.from_pylist(results, schema=REPLAY_RESULTS),
        pa.Table.from_pylist([], schema=REPLAY_EVENTS),
    )
    assert _rows(con, "SELECT * FROM daily_tokens") == [
        (date(2026, 11, 25), SMALL, None, 5, 4, 26, 57, 83),
        (date(2026, 11, 26), LARGE, None, 1, 1, 100, 50, 150),
        (date(2026, 11, 26), None, AGENT_A, 1, 1, 3, 4, 7),
        (date(2026, 11, 26), None, AGENT_B, 1, 1, 7, 8, 15),
    ]

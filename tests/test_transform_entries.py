"""Entries, messages and content chunks flattened from recorded history JSON, row by row.

An entry's text and content and a chunk's text are read from raw by the warehouse (generated
columns): rows are checked as the warehouse's DDL stores and shows them.
"""

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from load.warehouse import sql_text
from transform.entries import (
    flatten_content_chunks,
    flatten_entries,
    flatten_histories,
    flatten_histories_chunks,
)
from transform.schemas import CONTENT_CHUNKS, ENTRIES
from transform.workspaces import with_workspace

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_CONV = "conv_00000000000000000000000000000001"
AGENT_CONV = "conv_00000000000000000000000000000002"
AGENT_A = "ag_0000000000000000000000000000000a"
AGENT_B = "ag_0000000000000000000000000000000b"


def _fixture(name: str) -> dict:
    return orjson.loads((FIXTURES / name).read_bytes())


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# The columns the warehouse reads from raw, by table.
GENERATED = {"entries": ("text", "content"), "messages": ("text", "content")}
GENERATED["content_chunks"] = ("text",)


def _as_stored(table: pa.Table, target: str) -> list[dict]:
    """The rows as the warehouse stores and shows them (its generated columns included)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(sql_text("export/schema.sql"))
    con.register("batch_rows", with_workspace(table, "default"))
    con.execute(sql_text(f"export/insert_{target}.sql"))
    return con.sql(f"SELECT * EXCLUDE (workspace) FROM {target}").to_arrow_table().to_pylist()


def _entry_row(conversation_id: str, position: int, entry_id: str, **columns: object) -> dict:
    """An expected ENTRIES row: every column not given is null (raw is checked separately)."""
    row = {name: None for name in [*ENTRIES.names, *GENERATED["entries"]]}
    row.update(conversation_id=conversation_id, id=entry_id, position=position, export_run="run-1")
    row.update(columns)
    return row


def _without_raw(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "raw"} for row in rows]


def test_model_history_rows_are_exact() -> None:
    history = _fixture("history_model.json")
    table = flatten_entries(MODEL_CONV, history["entries"], "run-1")
    assert table.schema == ENTRIES
    expected = [
        _entry_row(
            MODEL_CONV,
            0,
            "msg_00000000000000000000000000000011",
            type="message.input",
            role="user",
            text="What's the weather in Paris?\x00",
            content='"What\'s the weather in Paris?\\u0000"',
            created_at=_at("2026-11-24T23:59:59.999999"),
            completed_at=_at("2026-11-24T23:59:59.999999"),
            prefix=False,
        ),
        _entry_row(
            MODEL_CONV,
            1,
            "fc_00000000000000000000000000000012",
            type="function.call",
            created_at=_at("2026-11-25T00:00:00.100000"),
            completed_at=_at("2026-11-25T00:00:00.200000"),
            tool_call_id="a1B2c3D4e",
            name="get_weather",
            arguments='"{\\"city\\": \\"Paris\\"}"',
        ),
        _entry_row(
            MODEL_CONV,
            2,
            "fc_00000000000000000000000000000013",
            type="function.result",
            created_at=_at("2026-11-25T00:00:00.300000"),
            tool_call_id="a1B2c3D4e",
            result='{"temperature": 12}',
        ),
        _entry_row(
            MODEL_CONV,
            3,
            "tool_exec_00000000000000000000000000000014",
            type="tool.execution",
            created_at=_at("2026-11-25T00:00:00.400000"),
            completed_at=_at("2026-11-25T00:00:00.500000"),
            name="web_search",
            arguments='"{\\"query\\": \\"Paris weather\\"}"',
            info='{"results":2}',
        ),
        _entry_row(
            MODEL_CONV,
            4,
            "msg_00000000000000000000000000000015",
            type="message.output",
            role="assistant",
            text="It is 12°C and cloudy.",
            content=orjson.dumps(history["entries"][4]["content"]).decode(),
            created_at=_at("2026-11-25T00:00:00.600000"),
            model="mistral-large-latest",
        ),
        _entry_row(
            MODEL_CONV,
            5,
            "msg_00000000000000000000000000000016",
            type="message.input",
            role="user",
            text="Compare with this: thanks",
            content=orjson.dumps(history["entries"][5]["content"]).decode(),
            created_at=_at("2026-11-25T00:00:01.000001"),
            prefix=True,
        ),
    ]
    assert _without_raw(_as_stored(table, "entries")) == _without_raw(expected)


def test_agent_history_rows_are_exact() -> None:
    history = _fixture("history_agent.json")
    table = flatten_entries(AGENT_CONV, history["entries"], "run-1")
    expected = [
        _entry_row(
            AGENT_CONV,
            0,
            "msg_00000000000000000000000000000021",
            type="message.input",
            role="user",
            text="I was charged twice.",
            content='[{"type":"text","text":"I was charged twice."}]',
            created_at=_at("2026-11-25T09:00:00"),
            completed_at=_at("2026-11-25T09:00:00"),
        ),
        _entry_row(
            AGENT_CONV,
            1,
            "handoff_00000000000000000000000000000022",
            type="agent.handoff",
            created_at=_at("2026-11-25T09:00:01"),
            completed_at=_at("2026-11-25T09:00:01.5"),
            previous_agent_id=AGENT_A,
            previous_agent_name="Support triage",
            next_agent_id=AGENT_B,
            next_agent_name="Billing helper",
        ),
        _entry_row(
            AGENT_CONV,
            2,
            "fc_00000000000000000000000000000023",
            type="function.call",
            created_at=_at("2026-11-25T09:00:02"),
            completed_at=_at("2026-11-25T09:00:02.1"),
            agent_id=AGENT_B,
            model="ministral-8b-latest",
            tool_call_id="Zz9Yy8Xx7",
            name="lookup_order",
            arguments='{"order":1234,"verbose":true}',
            confirmation_status="allowed",
        ),
        _entry_row(
            AGENT_CONV,
            3,
            "msg_00000000000000000000000000000024",
            type="message.output",
            role="assistant",
            text="Refunded.",
            content=orjson.dumps(history["entries"][3]["content"]).decode(),
            created_at=_at("2026-11-25T09:00:03"),
            completed_at=_at("2026-11-25T09:00:04"),
            agent_id=AGENT_B,
            model="ministral-8b-latest",
        ),
        _entry_row(
            AGENT_CONV,
            4,
            "gr_00000000000000000000000000000025",
            type="guardrail.check",
            created_at=_at("2026-11-25T09:00:05"),
        ),
    ]
    assert _without_raw(_as_stored(table, "entries")) == _without_raw(expected)


def test_raw_keeps_every_field_of_every_entry() -> None:
    for name in ("history_model.json", "history_agent.json"):
        history = _fixture(name)
        table = flatten_entries(history["conversation_id"], history["entries"], "run-1")
        raws = [orjson.loads(raw) for raw in table.column("raw").to_pylist()]
        assert raws == history["entries"]
    legacy = orjson.loads(
        flatten_entries(MODEL_CONV, _fixture("history_model.json")["entries"], "r")["raw"][
            5
        ].as_py()
    )
    assert legacy["object"] == "conversation.entry"
    assert legacy["legacy_flag"] == "kept in raw"


def test_batch_form_equals_one_call_per_conversation() -> None:
    model = _fixture("history_model.json")
    agent = _fixture("history_agent.json")
    histories = [(MODEL_CONV, model["entries"]), (AGENT_CONV, agent["entries"])]
    batch = flatten_histories(histories, "run-1")
    one_by_one = flatten_entries(MODEL_CONV, model["entries"], "run-1").to_pylist()
    one_by_one += flatten_entries(AGENT_CONV, agent["entries"], "run-1").to_pylist()
    assert batch.to_pylist() == one_by_one
    assert batch.num_rows == 11


def test_messages_endpoint_uses_the_entries_schema() -> None:
    messages = _fixture("messages_agent.json")
    table = flatten_entries(AGENT_CONV, messages["messages"], "run-1")
    assert table.schema == ENTRIES
    shown = ("id", "position", "type", "text", "content")
    assert [{k: row[k] for k in shown} for row in _as_stored(table, "messages")] == [
        {
            "id": "msg_00000000000000000000000000000021",
            "position": 0,
            "type": "message.input",
            "text": "I was charged twice.",
            "content": '[{"type":"text","text":"I was charged twice."}]',
        },
        {
            "id": "msg_00000000000000000000000000000024",
            "position": 1,
            "type": "message.output",
            "text": "Refunded.",
            "content": '"Refunded."',
        },
    ]


def _chunk_row(conversation_id: str, entry_id: str, index: int, **columns: object) -> dict:
    names = [*CONTENT_CHUNKS.names, *GENERATED["content_chunks"]]
    row = {name: None for name in names if name != "raw"}
    row.update(conversation_id=conversation_id, entry_id=entry_id, chunk_index=index)
    row.update(export_run="run-1")
    row.update(columns)
    return row


def test_content_chunk_rows_are_exact() -> None:
    model = _fixture("history_model.json")
    agent = _fixture("history_agent.json")
    table = flatten_histories_chunks(
        [(MODEL_CONV, model["entries"]), (AGENT_CONV, agent["entries"])], "run-1"
    )
    assert table.schema == CONTENT_CHUNKS
    out15 = "msg_00000000000000000000000000000015"
    in16 = "msg_00000000000000000000000000000016"
    expected = [
        _chunk_row(MODEL_CONV, out15, 0, type="text", text="It is 12°C "),
        _chunk_row(
            MODEL_CONV,
            out15,
            1,
            type="tool_reference",
            tool="web_search",
            title="Météo Paris",
            url="https://example.com/meteo",
        ),
        _chunk_row(MODEL_CONV, out15, 2, type="text", text="and cloudy."),
        _chunk_row(MODEL_CONV, in16, 0, type="text", text="Compare with this:"),
        _chunk_row(MODEL_CONV, in16, 1, type="image_url", url="https://example.com/a.png"),
        _chunk_row(MODEL_CONV, in16, 2, type="image_url", url="https://example.com/b.png"),
        _chunk_row(
            MODEL_CONV,
            in16,
            3,
            type="document_url",
            url="https://example.com/c.pdf",
            document_name="c.pdf",
        ),
        _chunk_row(MODEL_CONV, in16, 4, type="text", text=" thanks"),
        _chunk_row(
            AGENT_CONV,
            "msg_00000000000000000000000000000021",
            0,
            type="text",
            text="I was charged twice.",
        ),
        _chunk_row(
            AGENT_CONV,
            "msg_00000000000000000000000000000024",
            0,
            type="thinking",
            text="Check the order. Refund it.",
        ),
        _chunk_row(
            AGENT_CONV,
            "msg_00000000000000000000000000000024",
            1,
            type="text",
            text="Refunded.",
        ),
        _chunk_row(
            AGENT_CONV,
            "msg_00000000000000000000000000000024",
            2,
            type="tool_file",
            tool="code_interpreter",
            file_id="file_abc",
            file_name="receipt.pdf",
            file_type="pdf",
        ),
    ]
    assert _without_raw(_as_stored(table, "content_chunks")) == expected
    raws = [orjson.loads(raw) for raw in table.column("raw").to_pylist()]
    assert raws[2] == {"type": "text", "text": "and cloudy."}
    assert raws[7] == {"text": " thanks"}
    assert raws[9]["closed"] is True


def test_single_conversation_chunk_form() -> None:
    agent = _fixture("history_agent.json")
    table = flatten_content_chunks(AGENT_CONV, agent["entries"], "run-1")
    assert table.column("type").to_pylist() == ["text", "thinking", "text", "tool_file"]


def test_empty_batches_give_empty_tables_with_the_schema() -> None:
    assert flatten_histories([], "run-1").schema == ENTRIES
    assert flatten_histories([(MODEL_CONV, [])], "run-1").num_rows == 0
    assert flatten_histories_chunks([], "run-1").schema == CONTENT_CHUNKS


def test_odd_values_are_kept_not_fatal() -> None:
    entries = [
        {"type": "message.input", "role": "user", "content": "no id here"},
        {
            "id": "msg_x",
            "type": "message.output",
            "role": 7,
            "content": [{"type": "text", "text": "big"}, "bare string chunk"],
            "created_at": "2026-11-25T09:00:03.123456789Z",
            "completed_at": "not a timestamp",
            "info": {"n": 2**70},
        },
    ]
    table = flatten_entries(MODEL_CONV, entries, "run-1")
    rows = _as_stored(table, "entries")
    assert rows[0]["id"] == "position:0"
    assert rows[1]["role"] == "7"
    assert rows[1]["text"] == "big"
    assert rows[1]["created_at"] == _at("2026-11-25T09:00:03.123456")
    assert rows[1]["completed_at"] is None
    assert rows[1]["info"] == '{"n": 1180591620717411303424}'
    chunks = flatten_content_chunks(MODEL_CONV, entries, "run-1").to_pylist()
    assert [c["raw"] for c in chunks] == [
        '{"type":"text","text":"big"}',
        '{"value":"bare string chunk"}',
    ]


def test_an_entry_that_is_not_an_object_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"entry 1 of conversation conv_z is not a JSON object"):
        flatten_entries("conv_z", [{"id": "a"}, ["not", "an", "entry"]], "run-1")


def test_values_holding_the_json_column_boundary_are_encoded_exactly() -> None:
    from transform.columns import _BOUNDARY

    entries = [
        {"id": "a", "type": "message.input", "content": ["x", _BOUNDARY, "y"]},
        {"id": "b", "type": "message.input", "content": _BOUNDARY},
        {"id": "c", "type": "message.input", "content": [_BOUNDARY]},
        {"id": "d", "type": "message.input", "content": "plain"},
    ]
    table = flatten_entries(MODEL_CONV, entries, "run-1")
    assert [orjson.loads(r) for r in table.column("raw").to_pylist()] == entries
    contents = [orjson.loads(row["content"]) for row in _as_stored(table, "entries")]
    assert contents == [e["content"] for e in entries]

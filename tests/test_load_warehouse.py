"""The warehouse: schema on open, one-transaction idempotent merges, run records, locking."""

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from load.lock_wait import LockWait
from load.warehouse import (
    WarehouseLocked,
    merge_export_batch,
    open_warehouse,
    record_export_failures,
    record_export_run,
    stored_updated_at,
)
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks
from transform.export_runs import export_failures_table, export_run_table
from transform.updated_at_index import UpdatedAtIndex

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_CONV = "conv_00000000000000000000000000000001"
AGENT_CONV = "conv_00000000000000000000000000000002"
REPO = Path(__file__).resolve().parents[1]


def _fixture(name: str) -> object:
    return orjson.loads((FIXTURES / name).read_bytes())


def _batch(
    run_id: str, conversations: list[dict], histories: dict[str, list], messages: dict[str, list]
) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """The four tables of one export batch, built by the real transforms."""
    return (
        flatten_conversations(conversations, run_id),
        flatten_histories(histories.items(), run_id),
        flatten_histories(messages.items(), run_id),
        flatten_histories_chunks(histories.items(), run_id),
    )


def _fixture_batch(run_id: str) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    listed = _fixture("conversations_list.json")
    return _batch(
        run_id,
        listed[:2],
        {
            MODEL_CONV: _fixture("history_model.json")["entries"],
            AGENT_CONV: _fixture("history_agent.json")["entries"],
        },
        {AGENT_CONV: _fixture("messages_agent.json")["messages"]},
    )


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {
        table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for table in ("conversations", "entries", "messages", "content_chunks")
    }


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    return con.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM entries),"
        " (SELECT count(*) FROM messages), (SELECT count(*) FROM content_chunks)"
    ).fetchone()


def test_open_creates_every_export_table_and_view(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    names = {
        row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    expected = {
        "conversations",
        "entries",
        "messages",
        "content_chunks",
        "export_runs",
        "export_failures",
        "daily_usage",
        "tool_usage",
        "handoffs",
        "conversation_lengths",
        "latest_conversations",
        "model_agent_summary",
    }
    assert expected <= names
    con.close()
    open_warehouse(data_dir).close()
    assert (data_dir / "warehouse.duckdb").exists()


def test_merge_stores_json_columns_and_utc_timestamps(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    merge_export_batch(con, *_fixture_batch("run-1"))
    assert _counts(con) == (2, 11, 2, 12)
    arguments = con.execute(
        "SELECT json_type(arguments), arguments->>'$.order' FROM entries"
        " WHERE id = 'fc_00000000000000000000000000000023'"
    ).fetchone()
    assert arguments == ("OBJECT", "1234")
    string_arguments = con.execute(
        "SELECT json_type(arguments), arguments->>'$' FROM entries"
        " WHERE id = 'fc_00000000000000000000000000000012'"
    ).fetchone()
    assert string_arguments == ("VARCHAR", '{"city": "Paris"}')
    raw = con.execute(
        "SELECT raw->>'$.legacy_flag' FROM entries"
        " WHERE id = 'msg_00000000000000000000000000000016'"
    ).fetchone()
    assert raw == ("kept in raw",)
    assert con.execute(
        "SELECT text FROM entries WHERE id = 'msg_00000000000000000000000000000011'"
    ).fetchone() == ("What's the weather in Paris?\x00",)
    assert con.execute(
        "SELECT metadata->>'$.team', raw->>'$.agent_version' FROM conversations"
        " WHERE kind = 'agent'"
    ).fetchone() == ("support", "3")


def test_merging_the_same_batch_twice_changes_nothing(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    merge_export_batch(con, *_fixture_batch("run-1"))
    before = _snapshot(con)
    merge_export_batch(con, *_fixture_batch("run-1"))
    assert _snapshot(con) == before


def test_a_refetched_conversation_replaces_its_rows_and_keeps_its_first_run(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    merge_export_batch(con, *_fixture_batch("run-1"))
    listed = _fixture("conversations_list.json")
    updated = {**listed[1], "updated_at": "2026-11-26T08:00:00Z"}
    shorter = _fixture("history_model.json")["entries"][:2]
    merge_export_batch(con, *_batch("run-2", [updated], {MODEL_CONV: shorter}, {}))
    assert con.execute(
        "SELECT id, first_export_run, last_export_run, updated_at FROM conversations ORDER BY id"
    ).fetchall() == [
        (MODEL_CONV, "run-1", "run-2", datetime(2026, 11, 26, 8, tzinfo=UTC)),
        (AGENT_CONV, "run-1", "run-1", datetime(2026, 11, 25, 9, 5, 30, 250000, tzinfo=UTC)),
    ]
    assert con.execute(
        "SELECT conversation_id, count(*), max(export_run) FROM entries GROUP BY ALL ORDER BY ALL"
    ).fetchall() == [(MODEL_CONV, 2, "run-2"), (AGENT_CONV, 5, "run-1")]
    assert con.execute(
        "SELECT count(*) FROM content_chunks WHERE conversation_id = ?", [MODEL_CONV]
    ).fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM messages").fetchone() == (2,)


def test_a_failing_batch_leaves_the_warehouse_as_it_was(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    merge_export_batch(con, *_fixture_batch("run-1"))
    before = _snapshot(con)
    conversations, entries, messages, chunks = _fixture_batch("run-2")
    # The messages insert runs after the conversations upsert and the entries insert: a value
    # DuckDB refuses there must undo both.
    index = messages.schema.get_field_index("arguments")
    not_json = pa.array(["{not json"] * messages.num_rows, pa.string())
    broken = messages.set_column(index, messages.schema.field(index), not_json)
    with pytest.raises(duckdb.ConversionException):
        merge_export_batch(con, conversations, entries, broken, chunks)
    assert _snapshot(con) == before


def test_rows_of_a_conversation_missing_from_the_batch_are_refused(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    listed = _fixture("conversations_list.json")
    batch = _batch("run-1", [listed[0]], {MODEL_CONV: [{"id": "m", "content": "x"}]}, {})
    with pytest.raises(ValueError, match=f"entries of conversation {MODEL_CONV} are in the batch"):
        merge_export_batch(con, *batch)


def test_a_table_of_the_wrong_shape_is_refused(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    conversations, entries, _messages, chunks = _fixture_batch("run-1")
    with pytest.raises(ValueError, match="the messages table does not have the schema"):
        merge_export_batch(con, conversations, entries, chunks, chunks)
    assert _counts(con) == (0, 0, 0, 0)


def test_stored_updated_at_maps_ids_to_utc_datetimes(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    assert dict(UpdatedAtIndex(stored_updated_at(con))) == {}
    merge_export_batch(con, *_fixture_batch("run-1"))
    assert dict(UpdatedAtIndex(stored_updated_at(con))) == {
        MODEL_CONV: datetime(2026, 11, 25, 0, 0, 1, 1, tzinfo=UTC),
        AGENT_CONV: datetime(2026, 11, 25, 9, 5, 30, 250000, tzinfo=UTC),
    }


def test_export_runs_are_upserted_by_run_id(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    started = datetime(2026, 11, 26, 17, tzinfo=UTC)
    record_export_run(
        con, export_run_table({"run_id": "run-1", "started_at": started, "status": "running"})
    )
    record_export_run(
        con,
        export_run_table(
            {
                "run_id": "run-1",
                "started_at": started,
                "finished_at": "2026-11-26T17:00:09Z",
                "status": "completed",
                "mode": "full",
                "listed": 3,
                "fetched": 2,
                "base_url": "http://127.0.0.1:8000",
            }
        ),
    )
    assert con.execute(
        "SELECT run_id, status, mode, listed, fetched, epoch(finished_at) - epoch(started_at),"
        " base_url FROM export_runs"
    ).fetchall() == [("run-1", "completed", "full", 3, 2, 9.0, "http://127.0.0.1:8000")]
    with pytest.raises(ValueError, match="an export run needs a run_id"):
        record_export_run(con, export_run_table({"status": "running"}))


def test_a_failure_recorded_twice_is_one_row(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    failure = {
        "run_id": "run-1",
        "conversation_id": "conv_a",
        "endpoint": "history",
        "status": 503,
        "reason": "retries exhausted",
    }
    record_export_failures(con, export_failures_table([failure]))
    record_export_failures(con, export_failures_table([{**failure, "reason": "still failing"}]))
    record_export_failures(con, export_failures_table([]))
    assert con.execute(
        "SELECT conversation_id, endpoint, status, reason FROM export_failures ORDER BY ALL"
    ).fetchall() == [("conv_a", "history", 503, "still failing")]


_HOLDER = """
import sys, time
from load.warehouse import open_warehouse
con = open_warehouse(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_a_warehouse_held_by_another_process_raises_warehouse_locked(data_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(WarehouseLocked) as caught:
            open_warehouse(data_dir, lock_wait=LockWait(0))
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert "\n" not in message
    assert str(data_dir / "warehouse.duckdb") in message
    assert "locked by another process" in message


_SERVING_HOLDER = """
import sys, time
from load.read_server import serving_reads
from load.warehouse import open_warehouse
con = open_warehouse(sys.argv[1])
with serving_reads(con, sys.argv[1]):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_writer_meeting_another_writer_fails_without_waiting(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _SERVING_HOLDER, str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(WarehouseLocked, match="locked by another process"):
            open_warehouse(data_dir, lock_wait=LockWait(300))
    finally:
        holder.kill()
        holder.wait()
    assert "waiting" not in capsys.readouterr().err


_MERGER = """
import sys
from load.warehouse import merge_export_batch, open_warehouse
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks
con = open_warehouse(sys.argv[1])
batch = 0
while True:
    ids = [f"conv_{batch:04d}_{i:03d}" for i in range(200)]
    conversations = [{"id": c, "model": "m", "created_at": "2026-11-26T00:00:00Z",
                      "updated_at": "2026-11-26T00:00:00Z"} for c in ids]
    histories = [(c, [{"id": f"msg_{n}", "type": "message.output",
                       "content": [{"type": "text", "text": "t" * 50}]} for n in range(40)])
                 for c in ids]
    merge_export_batch(con, flatten_conversations(conversations, "run-k"),
                       flatten_histories(histories, "run-k"), flatten_histories([], "run-k"),
                       flatten_histories_chunks(histories, "run-k"))
    print(batch, flush=True)
    batch += 1
"""


def test_a_merge_killed_at_any_point_leaves_whole_batches(data_dir: Path) -> None:
    merger = subprocess.Popen(
        [sys.executable, "-c", _MERGER, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert merger.stdout is not None
        merger.stdout.readline()
        time.sleep(0.4)
    finally:
        merger.kill()
        merger.wait()
    con = open_warehouse(data_dir)
    conversations, entries, chunks = con.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM entries),"
        " (SELECT count(*) FROM content_chunks)"
    ).fetchone()
    assert conversations >= 200
    assert conversations % 200 == 0
    assert (entries, chunks) == (conversations * 40, conversations * 40)
    assert con.execute(
        "SELECT count(*) FROM conversations c"
        " WHERE (SELECT count(*) FROM entries e WHERE e.conversation_id = c.id) <> 40"
    ).fetchone() == (0,)


def test_a_read_only_connection_reads_views_and_refuses_writes(data_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no warehouse at"):
        open_warehouse(data_dir, read_only=True)
    writer = open_warehouse(data_dir)
    merge_export_batch(writer, *_fixture_batch("run-1"))
    writer.close()
    reader = open_warehouse(data_dir, read_only=True)
    assert reader.execute("SELECT sum(conversations) FROM model_agent_summary").fetchone() == (2,)
    with pytest.raises(duckdb.InvalidInputException):
        reader.execute("DELETE FROM entries")

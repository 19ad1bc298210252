"""The replay flow end to end on the emulator: each mode, threads, cut streams, faults, resume."""

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from prefect.artifacts import Artifact

from emulator.catalog import AGENTS
from emulator.events import DELTAS_BEFORE_ERROR
from emulator.replies import reply_pieces, reply_text, usage_for
from emulator.server import RunningEmulator
from flows.replay.flow import ReplaySummary, replay_flow
from load.warehouse import open_warehouse

pytestmark = pytest.mark.usefixtures("prefect_harness")

MakeEmulator = Callable[..., RunningEmulator]
MODEL = "mistral-small-latest"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator wants a bearer token, any token."""
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")


def replay(
    tmp_path: Path, data_dir: Path, emu: RunningEmulator, csv_text: str, **options: Any
) -> ReplaySummary:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(csv_text, encoding="utf-8")
    return asyncio.run(
        replay_flow(str(prompts), str(data_dir), base_url=emu.url, **{"run_id": "run", **options})
    )


def stored(data_dir: Path, table: str = "replay_results") -> list[dict[str, Any]]:
    con = open_warehouse(data_dir, read_only=True)
    try:
        cursor = con.execute(f"SELECT * FROM {table} ORDER BY ALL")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def parquet_rows(data_dir: Path, table: str) -> int:
    return sum(pq.read_table(part).num_rows for part in (data_dir / "parquet" / table).iterdir())


@pytest.mark.parametrize("stream", [True, False])
def test_rows_started_by_model_and_by_agent_get_the_deterministic_reply(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator, stream: bool
) -> None:
    emu = make_emulator(conversations=1, token_delay_ms=1)
    agent = AGENTS[0].id
    text = (
        "id,prompt,model,agent_id,temperature,team\n"
        f"m1,What is DuckDB?,{MODEL},,0.2,eval\n"
        f'm2,"Hello, ""you""",{MODEL},,,docs\n'
        f"a1,Where is my order?,,{agent},,eval\n"
    )
    summary = replay(tmp_path, data_dir, emu, text, stream=stream)
    assert (summary.ok, summary.errors, summary.sent, summary.results) == (3, 0, 3, 3)
    rows = {row["row_id"]: row for row in stored(data_dir)}
    for row_id, prompt in (
        ("m1", "What is DuckDB?"),
        ("m2", 'Hello, "you"'),
        ("a1", "Where is my order?"),
    ):
        row = rows[row_id]
        assert row["output_text"] == reply_text(prompt)
        assert row["total_tokens"] == usage_for(prompt)["total_tokens"]
        assert (row["status"], row["mode"], row["recovered"]) == ("ok", "start", False)
        assert row["conversation_id"] in emu.store
        assert row["output_entry_id"] == emu.store.history(row["conversation_id"])[-1]["id"]
        assert row["stream"] is stream
        assert (row["ttft_ms"] is not None) is stream
    assert (rows["a1"]["agent_id"], rows["m1"]["extra"]) == (agent, '{"team":"eval"}')
    assert emu.store.conversation(rows["a1"]["conversation_id"])["agent_id"] == agent
    operation = "start_stream" if stream else "start"
    assert emu.store.request_counts == {operation: 3}
    events = stored(data_dir, "replay_events")
    assert len(events) == sum(row["events"] for row in rows.values())
    assert (len(events) > 0) is stream
    if stream:
        assert {e["event_type"] for e in events} >= {
            "conversation.response.started",
            "message.output.delta",
            "conversation.response.done",
        }
    assert parquet_rows(data_dir, "replay_results") == 3
    assert parquet_rows(data_dir, "replay_events") == len(events)
    (run,) = stored(data_dir, "replay_runs")
    assert (run["rows"], run["ok"], run["errors"], run["stream"]) == (3, 3, 0, stream)
    assert run["base_url"] == emu.url and "test-key" not in str(run)
    artifact = Artifact.get("replay-summary")
    assert artifact is not None and "| 3 | 0 | 0 |" in str(artifact.data)


@pytest.mark.parametrize("stream", [True, False])
def test_thread_turns_reach_the_api_in_order_one_at_a_time(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator, stream: bool
) -> None:
    emu = make_emulator(conversations=1, token_delay_ms=2)
    text = "id,thread,prompt,model\n" + "".join(
        f"{name}{n},{name},turn {n} of the {name} thread,{MODEL if n == 0 else ''}\n"
        for name in ("red", "blue")
        for n in range(4)
    )
    summary = replay(tmp_path, data_dir, emu, text, stream=stream, repeat=2, concurrency=8)
    assert (summary.ok, summary.errors, summary.results) == (16, 0, 16)
    rows = stored(data_dir)
    for name in ("red", "blue"):
        for repeat_index in (0, 1):
            thread = [r for r in rows if r["thread"] == name and r["repeat_index"] == repeat_index]
            thread.sort(key=lambda r: r["row_number"])
            conversation = thread[0]["conversation_id"]
            assert [r["mode"] for r in thread] == ["start", "append", "append", "append"]
            assert {r["conversation_id"] for r in thread} == {conversation}
            assert [r["source_conversation_id"] for r in thread[1:]] == [conversation] * 3
            assert [r["output_text"] for r in thread] == [reply_text(r["prompt"]) for r in thread]
            history = emu.store.history(conversation)
            inputs = [e["content"] for e in history if e["type"] == "message.input"]
            assert inputs == [r["prompt"] for r in thread]
            suffix = "_stream" if stream else ""
            # Each append first reads the history's length, to tell later whether it landed.
            sends = [e for e in emu.store.request_log if e[1] == conversation and e[0] != "history"]
            assert sends == [(f"append{suffix}", conversation)] * 3
    conversations = {r["conversation_id"] for r in rows}
    assert len(conversations) == 4


@pytest.mark.parametrize("stream", [True, False])
def test_append_and_restart_on_existing_conversations(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator, stream: bool
) -> None:
    emu = make_emulator(conversations=3, token_delay_ms=1)
    first, second = (c["id"] for c in emu.store.conversations_newest_first()[:2])
    entry = emu.store.history(second)[0]["id"]
    text = (
        "id,prompt,conversation_id,from_entry_id\n"
        f"add1,One more question.,{first},\n"
        f"add2,And another one.,{first},\n"
        f"branch,Try that again.,{second},{entry}\n"
    )
    summary = replay(tmp_path, data_dir, emu, text, stream=stream, repeat=2)
    assert (summary.ok, summary.errors) == (6, 0)
    rows = stored(data_dir)
    for row in rows:
        assert row["output_text"] == reply_text(row["prompt"])
    appends = [r for r in rows if r["row_id"] != "branch"]
    assert {(r["mode"], r["source_conversation_id"], r["conversation_id"]) for r in appends} == {
        ("append", first, first)
    }
    inputs = [e["content"] for e in emu.store.history(first) if e["type"] == "message.input"]
    assert sorted(inputs[-4:]) == sorted(["One more question.", "And another one."] * 2)
    branches = [r for r in rows if r["row_id"] == "branch"]
    for branch in branches:
        assert (branch["mode"], branch["source_conversation_id"]) == ("restart", second)
        assert branch["from_entry_id"] == entry
        history = emu.store.history(branch["conversation_id"])
        assert branch["conversation_id"] != second
        assert history[0]["id"] == entry
        assert history[1]["content"] == "Try that again."
    suffix = "_stream" if stream else ""
    assert emu.store.request_counts == {
        f"append{suffix}": 4,
        f"restart{suffix}": 2,
        "history": 4,  # each append reads the history's length first
    }


def test_cut_streams_are_recovered_from_history_without_sending_twice(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1, token_delay_ms=1, stream_cut_rate=1.0)
    text = "prompt,thread\n" + "".join(f"question {n},{'t' if n > 5 else ''}\n" for n in range(8))
    summary = replay(tmp_path, data_dir, emu, text, model=MODEL)
    assert (summary.ok, summary.errors, summary.recovered) == (8, 0, 8)
    rows = stored(data_dir)
    assert [r["output_text"] for r in rows] == [reply_text(r["prompt"]) for r in rows]
    assert {(r["recovered"], r["error"], r["attempts"]) for r in rows} == {(True, None, 1)}
    # 8 reads of the cut turns, 1 of the history's length before the append.
    assert emu.store.request_counts == {"start_stream": 7, "append_stream": 1, "history": 9}
    assert sorted(emu.store.turns_created.values()) == [1] * 8
    events = stored(data_dir, "replay_events")
    assert "conversation.response.done" not in {e["event_type"] for e in events}
    assert len(events) == sum(r["events"] for r in rows) >= 8


def test_faults_before_the_stream_are_retried(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1, seed=3, fault_rate=0.3)
    text = "prompt\n" + "".join(f"faulty {n}\n" for n in range(12))
    summary = replay(tmp_path, data_dir, emu, text, model=MODEL, recover_timeout=1.0)
    assert (summary.ok, summary.errors) == (12, 0)
    # A 5xx may have been applied: each was looked up before it was sent again.
    assert len(emu.store.turns_created) == 12
    assert set(emu.store.turns_created.values()) == {1}
    assert [r["output_text"] for r in stored(data_dir)] == [
        reply_text(r["prompt"]) for r in stored(data_dir)
    ]


def test_a_failed_turn_fails_the_rest_of_its_thread_without_sending_it(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    text = (
        "id,thread,prompt,conversation_id\n"
        "a,t,Hello?,conv_00000000000000000000000000000000\n"
        "b,t,Anyone?,\n"
        "c,,Fine on its own.,\n"
    )
    summary = replay(tmp_path, data_dir, emu, text, model=MODEL)
    assert (summary.ok, summary.errors) == (1, 2)
    rows = {r["row_id"]: r for r in stored(data_dir)}
    # The history read that precedes an append finds the conversation missing: nothing is sent.
    assert rows["a"]["error"].startswith("history: HTTP 404:")
    assert (rows["b"]["mode"], rows["b"]["error"], rows["b"]["attempts"]) == (
        "append",
        "previous turn failed",
        0,
    )
    assert rows["c"]["status"] == "ok"
    assert emu.store.request_counts == {"start_stream": 1, "history": 1}


def test_a_rerun_with_the_same_run_id_sends_only_what_is_not_ok(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1, token_delay_ms=1)
    first_part = f"id,thread,prompt,model\nx,,Loose row.,{MODEL}\nt1,t,First turn.,{MODEL}\n"
    whole = first_part + "t2,t,Second turn.,\nt3,t,Third turn.,\ny,,Another loose row.," + MODEL
    assert replay(tmp_path, data_dir, emu, first_part, batch_rows=1).ok == 2
    thread_conversation = next(r for r in stored(data_dir) if r["row_id"] == "t1")[
        "conversation_id"
    ]

    emu.config.api_key = "a-different-key"
    refused = replay(tmp_path, data_dir, emu, whole, batch_rows=1)
    assert (refused.ok, refused.errors, refused.sent, refused.skipped) == (2, 3, 2, 2)
    errors = {r["row_id"]: r["error"] for r in stored(data_dir) if r["status"] == "error"}
    assert errors["t3"] == "previous turn failed"
    assert "HTTP 401" in errors["t2"] and "HTTP 401" in errors["y"]

    emu.config.api_key = None
    emu.store.reset_counts()
    resumed = replay(tmp_path, data_dir, emu, whole, batch_rows=1)
    assert (resumed.ok, resumed.errors, resumed.sent, resumed.skipped) == (5, 0, 3, 2)
    sends = [entry for entry in emu.store.request_log if entry[0] != "history"]
    assert sorted(sends) == sorted(
        [("append_stream", thread_conversation)] * 2 + [("start_stream", "")]
    )
    rows = stored(data_dir)
    assert len(rows) == 5
    assert {r["conversation_id"] for r in rows if r["thread"] == "t"} == {thread_conversation}
    assert [r["output_text"] for r in rows] == [reply_text(r["prompt"]) for r in rows]
    assert parquet_rows(data_dir, "replay_results") == 5
    assert len(list((data_dir / "parquet" / "replay_results").iterdir())) == 1
    assert parquet_rows(data_dir, "replay_events") == len(stored(data_dir, "replay_events"))
    (run,) = stored(data_dir, "replay_runs")
    assert (run["ok"], run["errors"], run["rows"]) == (5, 0, 5)


def test_a_conversation_busy_elsewhere_is_waited_for_not_failed(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=2, token_delay_ms=100)
    busy = emu.store.conversations_newest_first()[0]["id"]
    first_byte = threading.Event()

    def someone_else_appends() -> None:
        body = {"inputs": "a long question from another client", "stream": True}
        headers = {"Authorization": "Bearer other"}
        with httpx.stream(
            "POST", f"{emu.url}/v1/conversations/{busy}", json=body, headers=headers
        ) as response:
            for _ in response.iter_bytes():
                first_byte.set()

    other = threading.Thread(target=someone_else_appends)
    other.start()
    assert first_byte.wait(10)
    summary = replay(tmp_path, data_dir, emu, f"prompt,conversation_id\nMe too.,{busy}\n")
    other.join()
    assert (summary.ok, summary.errors) == (1, 0)
    assert emu.store.request_counts["append_stream"] >= 3
    (row,) = stored(data_dir)
    assert row["output_text"] == reply_text("Me too.")


def test_error_events_fail_rows_with_their_message_and_a_rerun_makes_them_ok(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    # The existing conversation is a reasoning model's: without thinking chunks its first
    # deltas are reply text, as this test's expected output assumes.
    emu = make_emulator(
        conversations=1, token_delay_ms=1, stream_error_rate=1.0, thinking_chunks=False
    )
    existing = emu.store.conversations_newest_first()[0]["id"]
    text = (
        "id,prompt,model,conversation_id\n"
        f"a,First question.,{MODEL},\n"
        f"b,Second question.,{MODEL},\n"
        f"c,Add this.,,{existing}\n"
    )
    failed = replay(tmp_path, data_dir, emu, text)
    assert (failed.ok, failed.errors, failed.sent, failed.results) == (0, 3, 3, 3)
    rows = stored(data_dir)
    assert {(r["status"], r["error"], r["attempts"]) for r in rows} == {
        ("error", "conversation.response.error 3000: Internal server error", 1)
    }
    for row in rows:
        pieces = reply_pieces(reply_text(row["prompt"]))[:DELTAS_BEFORE_ERROR]
        assert row["output_text"] == "".join(pieces)
        assert row["events"] == DELTAS_BEFORE_ERROR + 2
        assert row["conversation_id"] in emu.store
    events = stored(data_dir, "replay_events")
    assert len(events) == parquet_rows(data_dir, "replay_events") == 3 * (DELTAS_BEFORE_ERROR + 2)
    assert [e["event_type"] for e in events].count("conversation.response.error") == 3
    assert emu.store.request_counts == {"start_stream": 2, "append_stream": 1, "history": 1}
    (run,) = stored(data_dir, "replay_runs")
    assert (run["ok"], run["errors"]) == (0, 3)

    emu.config.stream_error_rate = 0.0
    resumed = replay(tmp_path, data_dir, emu, text)
    assert (resumed.ok, resumed.errors, resumed.sent, resumed.skipped) == (3, 0, 3, 0)
    rows = stored(data_dir)
    assert [r["output_text"] for r in rows] == [reply_text(r["prompt"]) for r in rows]
    assert {(r["status"], r["error"]) for r in rows} == {("ok", None)}
    assert parquet_rows(data_dir, "replay_results") == 3
    events = stored(data_dir, "replay_events")
    assert "conversation.response.error" not in {e["event_type"] for e in events}
    assert len(events) == parquet_rows(data_dir, "replay_events") == sum(r["events"] for r in rows)
    inputs = [e["content"] for e in emu.store.history(existing) if e["type"] == "message.input"]
    assert inputs[-2:] == ["Add this.", "Add this."]
    (run,) = stored(data_dir, "replay_runs")
    assert (run["ok"], run["errors"]) == (3, 0)

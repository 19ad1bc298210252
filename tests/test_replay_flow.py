"""The replay flow end to end on the emulator: each mode, threads, cut streams, faults, resume,
and exactly one stored turn per row (function calls, faults after commit, slow generation)."""

import asyncio
import itertools
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from prefect.artifacts import Artifact

from emulator.catalog import AGENTS
from emulator.events import DELTAS_BEFORE_ERROR
from emulator.replies import agent_step, reply_pieces, reply_text, usage_for
from emulator.server import RunningEmulator
from extract.errors import ApiKeyRejected
from flows.replay.flow import ReplaySummary, replay_flow
from load.warehouse import open_warehouse

pytestmark = pytest.mark.usefixtures("prefect_harness")

MakeEmulator = Callable[..., RunningEmulator]
MODEL = "mistral-small-latest"
AGENT = AGENTS[0].id


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
    assert run["status"] == "completed"
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
    # A rejected key stops the run at the first 401: nothing more is sent, nothing stored.
    with pytest.raises(ApiKeyRejected):
        replay(tmp_path, data_dir, emu, whole, batch_rows=1)
    assert sorted(r["row_id"] for r in stored(data_dir)) == ["t1", "x"]

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


# Exactly once: the emulator's awkward behaviours, judged by its own count of stored turns.


def results_by_key(data_dir: Path) -> dict[str, dict[str, Any]]:
    con = open_warehouse(data_dir, read_only=True)
    try:
        cursor = con.execute("SELECT * FROM replay_results")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return {f"{row['row_id']}#{row['repeat_index']}": row for row in rows}


def prompts_where(step: str, count: int) -> list[str]:
    """Prompts an agent answers with `step` first ('function', 'tool', 'handoff', 'none')."""
    candidates = (f"Question number {n} about my order" for n in itertools.count())
    return list(itertools.islice((p for p in candidates if agent_step(p) == step), count))


def starts_per_row(emu: RunningEmulator) -> Counter[str]:
    """Stored start turns per row, from the run tag the emulator saw on each start."""
    return Counter(
        f"{turn.metadata['convo_etl_row']}#{turn.metadata['convo_etl_repeat']}"
        for turn in emu.store.committed_turns
        if turn.operation == "start"
    )


@pytest.mark.parametrize("stream", [True, False])
def test_function_calls_are_answered_from_the_csv_until_the_agent_answers_in_text(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator, stream: bool
) -> None:
    emu = make_emulator(conversations=1, token_delay_ms=1)
    answered, left, threaded = prompts_where("function", 3)
    results = orjson.dumps({"lookup_order": {"status": "shipped"}}).decode().replace('"', '""')
    text = (
        "id,thread,prompt,agent_id,function_results\n"
        f'answered,,{answered},{AGENT},"{results}"\n'
        f"left,,{left},{AGENT},\n"
        f't1,t,{threaded},{AGENT},"{results}"\n'
        "t2,t,And when will it arrive?,,\n"
    )
    summary = replay(tmp_path, data_dir, emu, text, stream=stream)
    assert (summary.ok, summary.errors) == (4, 0)
    rows = results_by_key(data_dir)
    shipped = reply_text('{"status":"shipped"}')
    for row_id in ("answered#0", "t1#0"):
        row = rows[row_id]
        assert (row["finish"], row["output_text"]) == ("message", shipped)
        (call,) = orjson.loads(row["function_calls"])
        assert call["name"] == "lookup_order" and call["tool_call_id"]
        assert orjson.loads(call["arguments"])["verbose"] is True
        types = [entry["type"] for entry in orjson.loads(row["outputs"])]
        assert types == ["function.call", "message.output"]
        results_sent = [
            e for e in emu.store.history(row["conversation_id"]) if e["type"] == "function.result"
        ]
        assert [e["tool_call_id"] for e in results_sent] == [call["tool_call_id"]]
        assert results_sent[0]["result"] == '{"status":"shipped"}'
    row = rows["left#0"]
    assert (row["finish"], row["output_text"]) == ("function_call", "")
    assert [c["name"] for c in orjson.loads(row["function_calls"])] == ["lookup_order"]
    assert rows["t2#0"]["conversation_id"] == rows["t1#0"]["conversation_id"]
    assert rows["t2#0"]["output_text"] == reply_text("And when will it arrive?")
    # One start per row; one append per function round and per later thread turn.
    assert set(starts_per_row(emu).values()) == {1} and len(starts_per_row(emu)) == 3
    appends = Counter(cid for (op, cid) in emu.store.turns_created.elements() if op == "append")
    assert appends == {rows["answered#0"]["conversation_id"]: 1, rows["t1#0"]["conversation_id"]: 2}


def test_a_function_without_a_result_in_the_csv_fails_its_row(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    (prompt,) = prompts_where("function", 1)
    text = f'prompt,agent_id,function_results\n{prompt},{AGENT},"{{""other"": 1}}"\n'
    summary = replay(tmp_path, data_dir, emu, text, stream=False)
    assert (summary.ok, summary.errors) == (0, 1)
    (row,) = results_by_key(data_dir).values()
    assert row["error"] == "function_results has no result for function 'lookup_order'"
    assert row["finish"] == "function_call"


@pytest.mark.parametrize("stream", [True, False])
def test_answers_that_fail_after_their_turn_was_stored_are_recovered_not_resent(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator, stream: bool
) -> None:
    emu = make_emulator(conversations=1, seed=5, fault_after_commit_rate=1.0)
    existing = emu.store.conversations_newest_first()[0]["id"]
    text = (
        "id,thread,prompt,model,conversation_id\n"
        + "".join(f"s{n},,Loose question {n},{MODEL},\n" for n in range(6))
        + f"t1,t,Thread start,{MODEL},\n"
        + "t2,t,Thread follow-up,,\n"
        + f"a,,Append to an old one,,{existing}\n"
    )
    summary = replay(tmp_path, data_dir, emu, text, stream=stream, recover_timeout=30.0)
    assert (summary.ok, summary.errors, summary.recovered) == (9, 0, 9)
    rows = results_by_key(data_dir)
    assert all(row["output_text"] == reply_text(row["prompt"]) for row in rows.values())
    assert set(emu.store.turns_created.values()) == {1}
    assert len(emu.store.turns_created) == 9
    assert set(starts_per_row(emu).values()) == {1}
    inputs = [e for e in emu.store.history(existing) if e["type"] == "message.input"]
    assert [e["content"] for e in inputs].count("Append to an old one") == 1


def test_streams_cut_during_slow_generation_are_polled_until_the_turn_lands(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1, stream_cut_rate=1.0, generation_ms=600)
    text = "id,thread,prompt,model\n" + "".join(
        f"r{n},{'t' if n < 2 else ''},Slow question {n},{MODEL if n != 1 else ''}\n"
        for n in range(5)
    )
    summary = replay(tmp_path, data_dir, emu, text, recover_timeout=30.0)
    assert (summary.ok, summary.errors, summary.recovered) == (5, 0, 5)
    rows = results_by_key(data_dir)
    assert all(row["output_text"] == reply_text(row["prompt"]) for row in rows.values())
    assert {row["attempts"] for row in rows.values()} == {1}
    assert set(emu.store.turns_created.values()) == {1} and len(emu.store.turns_created) == 5


def test_without_the_tag_an_ambiguous_start_fails_its_row_instead_of_being_resent(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1, fault_after_commit_rate=1.0)
    text = f"id,prompt,model\nonly,Hello there,{MODEL}\n"
    summary = replay(tmp_path, data_dir, emu, text, stream=False, tag=False, recover_timeout=0.5)
    assert (summary.ok, summary.errors) == (0, 1)
    (row,) = results_by_key(data_dir).values()
    assert "so it was not resent (--no-tag)" in row["error"]
    assert emu.store.request_counts["start"] == 1
    assert [turn.metadata for turn in emu.store.committed_turns] == [None]


def test_the_whole_response_is_kept_usage_outputs_and_the_last_agent(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1, token_delay_ms=1)
    (searched,) = prompts_where("tool", 1)
    (handed,) = prompts_where("handoff", 1)
    text = f"id,prompt,agent_id\nsearch,{searched},{AGENT}\nhandoff,{handed},{AGENT}\n"
    for stream in (True, False):
        replay(tmp_path, data_dir, emu, text, stream=stream, run_id=f"run-{stream}")
        con = open_warehouse(data_dir, read_only=True)
        try:
            picked = con.execute(
                "SELECT row_id, usage, outputs, last_agent_id FROM replay_results "
                "WHERE run_id = ? ORDER BY row_id",
                [f"run-{stream}"],
            ).fetchall()
        finally:
            con.close()
        (handoff_row, search_row) = picked
        usage = orjson.loads(search_row[1])
        assert usage["connectors"] == {"web_search": 1} and usage["connector_tokens"] > 0
        outputs = orjson.loads(search_row[2])
        assert [entry["type"] for entry in outputs] == ["tool.execution", "message.output"]
        assert outputs[0]["name"] == "web_search" and outputs[0]["info"]
        handoff_outputs = orjson.loads(handoff_row[2])
        assert [entry["type"] for entry in handoff_outputs] == ["agent.handoff", "message.output"]
        assert handoff_row[3] == handoff_outputs[0]["next_agent_id"] != AGENT

"""Replay against the emulator's awkward behaviours: every row creates its turns exactly once.

Function calls answered from the CSV, answers that fail after their turn was stored, streams
cut while a slow turn is still generating: the server's own count of stored turns
(`store.turns_created`, `store.committed_turns`) is the judge.
"""

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from emulator.catalog import AGENTS
from emulator.replies import agent_step, reply_text
from emulator.server import RunningEmulator
from flows.replay.flow import ReplaySummary, replay_flow
from load.warehouse import open_warehouse

pytestmark = pytest.mark.usefixtures("prefect_harness")

MakeEmulator = Callable[..., RunningEmulator]
MODEL = "mistral-small-latest"
AGENT = AGENTS[0].id


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")


def replay(
    tmp_path: Path, data_dir: Path, emu: RunningEmulator, csv_text: str, **options: Any
) -> ReplaySummary:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(csv_text, encoding="utf-8")
    return asyncio.run(
        replay_flow(str(prompts), str(data_dir), base_url=emu.url, **{"run_id": "run", **options})
    )


def stored(data_dir: Path) -> dict[str, dict[str, Any]]:
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
    rows = stored(data_dir)
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
    (row,) = stored(data_dir).values()
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
    rows = stored(data_dir)
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
    rows = stored(data_dir)
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
    (row,) = stored(data_dir).values()
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

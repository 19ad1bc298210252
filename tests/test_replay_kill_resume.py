"""kill -9 of a `convo-etl replay` mid-run, then a resume with the same --run-id: no prompt whose
turn the API stored is sent again (the send journal remembers what was in flight)."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from emulator.replies import reply_text
from emulator.server import RunningEmulator
from flows.cli import app
from load.warehouse import open_warehouse

CONVO_ETL = str(Path(sys.executable).parent / "convo-etl")
MODEL = "mistral-small-latest"
ROWS = 12


def journal_sends(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return [r for r in records if r["kind"] == "send"]


@pytest.mark.parametrize("stream", [True, False])
def test_a_resumed_run_sends_no_prompt_whose_turn_was_stored(
    prefect_harness: None,
    make_emulator: Callable[..., RunningEmulator],
    tmp_path: Path,
    data_dir: Path,
    stream: bool,
) -> None:
    emu = make_emulator(conversations=1, generation_ms=1500)
    existing = emu.store.conversations_newest_first()[0]["id"]
    prompts = tmp_path / "prompts.csv"
    rows = [f"s{n},,Question {n},{MODEL},\n" for n in range(ROWS - 3)]
    rows += [f"t1,t,Thread start,{MODEL},\n", "t2,t,Thread next,,\n"]
    rows += [f"a,,Added to an old one,,{existing}\n"]
    prompts.write_text("id,thread,prompt,model,conversation_id\n" + "".join(rows), "utf-8")
    args = ["replay", str(prompts), "--base-url", emu.url, "--data-dir", str(data_dir)]
    args += ["--run-id", "killed", "--concurrency", "6", "--recover-timeout", "10"]
    args += ["--stream" if stream else "--no-stream"]
    env = {**os.environ, "MISTRAL_API_KEY": "k", "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    process = subprocess.Popen(
        [CONVO_ETL, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    journal = data_dir / "replay" / "journal" / "killed.jsonl"
    deadline = time.monotonic() + 120
    operation = "start_stream" if stream else "start"
    # Kill once six starts reached the server: their turns are generating, none is answered.
    while emu.store.request_counts[operation] < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    in_flight = {r["row"] for r in journal_sends(journal)}
    assert len(in_flight) >= 6, "the kill should land while turns generate"
    assert not emu.store.turns_created, "no turn should be stored before the kill"

    result = CliRunner().invoke(app, args, env={"MISTRAL_API_KEY": "k"})
    assert result.exit_code == 0, result.output
    con = open_warehouse(data_dir, read_only=True)
    try:
        stored = con.execute(
            "SELECT row_id, status, output_text, prompt, recovered FROM replay_results"
        ).fetchall()
    finally:
        con.close()
    assert len(stored) == ROWS
    assert all(status == "ok" and text == reply_text(p) for _, status, text, p, _ in stored)
    recovered = {row_id for row_id, *_, was_recovered in stored if was_recovered}
    assert len(recovered) >= 6 and recovered <= in_flight
    # The server's count: one start per starting row, one append per appending row.
    starts = Counter(t.metadata["convo_etl_row"] for t in emu.store.committed_turns if t.metadata)
    assert set(starts.values()) == {1} and len(starts) == ROWS - 2
    assert set(emu.store.turns_created.values()) == {1} and len(emu.store.turns_created) == ROWS
    inputs = [e["content"] for e in emu.store.history(existing) if e["type"] == "message.input"]
    assert inputs.count("Added to an old one") == 1

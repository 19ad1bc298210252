"""`convo-etl replay`: bad input or no key stops before any request; a run prints a summary."""

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emulator.replies import reply_text
from emulator.server import RunningEmulator
from flows.cli import app
from load.warehouse import open_warehouse

MakeEmulator = Callable[..., RunningEmulator]
BROKEN = (
    "id,prompt,model,temperature,from_entry_id,metadata\n"
    "a,Fine.,m,0.1,,\n"
    "b,,m,,,\n"
    "c,Hot?,m,hot,,\n"
    "a,Again.,m,,,\n"
    "e,Branch?,m,,msg_1,\n"
    "f,Meta?,m,,,[1]\n"
    "g,Nobody?,,,,\n"
)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator wants a bearer token, any token."""
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")


@pytest.mark.usefixtures("api_key")
def test_a_broken_file_lists_every_problem_and_sends_nothing(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(BROKEN, encoding="utf-8")
    result = CliRunner().invoke(
        app, ["replay", str(prompts), "--base-url", emu.url, "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: prompts.csv: row 2, column prompt: the prompt is empty",
        "error: prompts.csv: row 3, column temperature: 'hot' is not a number",
        "error: prompts.csv: row 4, column id: duplicate id 'a' (first on row 1)",
        "error: prompts.csv: row 5, column from_entry_id: "
        "from_entry_id needs a conversation_id on the same row",
        "error: prompts.csv: row 6, column metadata: '[1]' is not a JSON object",
        "error: prompts.csv: row 7, column model: a row that starts a conversation needs model or "
        "agent_id (or --model / --agent-id)",
    ]
    assert sum(emu.store.request_counts.values()) == 0
    assert list(data_dir.iterdir()) == []


@pytest.mark.usefixtures("api_key")
def test_bytes_that_are_not_utf8_stop_the_run(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    prompts = tmp_path / "latin1.csv"
    prompts.write_bytes("prompt,model\ncafé au lait,m\n".encode("latin-1"))
    result = CliRunner().invoke(
        app, ["replay", str(prompts), "--base-url", emu.url, "--data-dir", str(data_dir)]
    )
    assert (result.exit_code, result.stderr) == (
        2,
        "error: latin1.csv: row 1, column prompt: bytes are not valid UTF-8\n",
    )
    assert sum(emu.store.request_counts.values()) == 0


@pytest.mark.usefixtures("api_key")
def test_a_missing_file_and_a_bad_run_id_are_named(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["replay", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    assert missing.stderr.startswith(f"error: {tmp_path / 'nope.csv'}: cannot read the file:")
    prompts = tmp_path / "p.csv"
    prompts.write_text("prompt,model\nhi,m\n", encoding="utf-8")
    bad_id = CliRunner().invoke(app, ["replay", str(prompts), "--run-id", "../x"])
    assert bad_id.exit_code == 2
    assert bad_id.stderr.startswith("error: --run-id: run id '../x' must be 1-100 letters")


def test_without_a_key_the_message_says_how_to_set_one_or_use_the_emulator(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "p.csv"
    prompts.write_text("prompt,model\nhi,m\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(prompts)])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert message.startswith("error: MISTRAL_API_KEY is not set.")
    assert "export MISTRAL_API_KEY=<your key>" in message
    assert "convo-etl emulator --port 8000" in message


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_a_run_prints_its_id_and_summary_and_fails_when_rows_fail(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1, token_delay_ms=1)
    prompts = tmp_path / "p.csv"
    prompts.write_text(
        "id,prompt,conversation_id\n"
        "ok,All good?,\n"
        "lost,Where?,conv_00000000000000000000000000000000\n",
        encoding="utf-8",
    )
    args = ["replay", str(prompts), "--base-url", emu.url, "--data-dir", str(data_dir)]
    result = CliRunner().invoke(
        app, [*args, "--model", "mistral-small-latest", "--no-stream", "--run-id", "cli-run"]
    )
    assert result.exit_code == 1, result.output
    assert "run id: cli-run" in result.stderr
    assert "ok / errors" in result.stdout and "1 / 1" in result.stdout
    # The append to a missing conversation fails at the history read that precedes it.
    assert emu.store.request_counts == {"start": 1, "history": 1}
    con = open_warehouse(data_dir, read_only=True)
    try:
        rows = con.execute(
            "SELECT row_id, status, output_text FROM replay_results ORDER BY row_id"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("lost", "error", None), ("ok", "ok", reply_text("All good?"))]

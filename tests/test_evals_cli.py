"""Evals wired in: replay grades as it finishes, `grade` regrades stored outputs (deterministic
checks send nothing; llm-rubric asks the judge once, then the cache), and the gate's exit codes."""

import csv
from collections.abc import Callable
from pathlib import Path

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from emulator.replies import json_reply, reply_text
from emulator.server import RunningEmulator
from flows.cli import app

MakeEmulator = Callable[..., RunningEmulator]
EXAMPLE = Path(__file__).parent.parent / "data" / "prompts" / "checks.csv"
MODEL = "mistral-small-latest"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def query(data_dir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def replay(emu: RunningEmulator, data_dir: Path, prompts: Path, run_id: str, *more: str) -> Result:
    return invoke(
        "replay", str(prompts), "--data-dir", str(data_dir), "--base-url", emu.url,
        "--run-id", run_id, "--concurrency", "2", *more,
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_the_example_set_passes_and_its_verdicts_are_stored(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    result = replay(emu, data_dir, EXAMPLE, "ex", "--fail-under", "0.9")
    assert result.exit_code == 0, result.output
    assert "pass rate" in result.stdout and "100.0% (5 of 5 results)" in result.stdout

    checks = query(
        data_dir,
        "SELECT row_id, check_index, type, pass, reason, grader FROM replay_checks "
        "WHERE run_id = 'ex' ORDER BY row_id, check_index",
    )
    assert len(checks) == 11
    assert ("translate", 1, "icontains", False, "output does not contain (ignoring case) "
            "'buenos días'", "rule") in checks  # fmt: skip
    assert all(passed for row, _, _, passed, *_ in checks if row != "translate")
    verdicts = query(
        data_dir, "SELECT row_id, share, threshold, pass FROM replay_verdicts ORDER BY row_id"
    )
    assert ("translate", 0.5, 0.5, True) in verdicts
    assert all(passed for *_, passed in verdicts)
    parts = list((data_dir / "parquet" / "replay_checks").glob("*.parquet"))
    assert [part.name for part in parts] == ["ex.parquet"]
    assert pq.read_table(parts[0]).num_rows == 11
    assert pq.read_table(data_dir / "parquet" / "replay_row_checks" / "ex.parquet").num_rows == 5


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_grade_sends_nothing_for_rules_and_the_gate_exits_3(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    assert replay(emu, data_dir, EXAMPLE, "ex").exit_code == 0
    emu.store.reset_counts()

    regraded = invoke("grade", "ex", "--data-dir", str(data_dir), "--base-url", emu.url)
    assert regraded.exit_code == 0, regraded.output
    assert "100.0% (5 of 5 results)" in regraded.stdout
    stricter = write_csv(
        tmp_path / "stricter.csv",
        ["id", "__expected", "__expected1"],
        [["capital", "icontains: paris", ""], ["greet", "starts-with: Noted", ""],
         ["haiku", "contains: autumn", "max-tokens: 1"]],
    )  # fmt: skip
    gated = invoke(
        "grade", "ex", "--checks", str(stricter), "--fail-under", "0.9",
        "--data-dir", str(data_dir), "--base-url", emu.url,
    )  # fmt: skip
    assert gated.exit_code == 3, gated.output
    assert gated.stderr == "error: pass rate 33.3% is below --fail-under 90.0%\n"
    assert sum(emu.store.request_counts.values()) == 0
    # The new CSV's checks are now the run's: grading again uses them.
    again = invoke("grade", "ex", "--data-dir", str(data_dir), "--fail-under", "0.3")
    assert again.exit_code == 0, again.output
    assert query(data_dir, "SELECT count(*) FROM replay_checks")[0][0] == 4
    assert sum(emu.store.request_counts.values()) == 0


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_llm_rubric_asks_the_judge_once_then_the_cache(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    prompts = write_csv(
        tmp_path / "judged.csv",
        ["id", "prompt", "model", "__expected"],
        [["yes", "Tell me about Lisbon trams.", MODEL, "llm-rubric: lisbon trams"],
         ["no", "Tell me about Porto.", MODEL, "llm-rubric: mentions Madrid"]],
    )  # fmt: skip
    result = replay(emu, data_dir, prompts, "judged", "--judge-model", "judge-small")
    assert result.exit_code == 0, result.output
    assert "50.0% (1 of 2 results)" in result.stdout
    assert emu.store.request_counts["start"] == 2  # the judge, unstored
    assert emu.store.turns_created.total() == 2  # the replayed rows' turns; the judge's unstored
    rows = query(
        data_dir, "SELECT row_id, pass, score, reason, grader FROM replay_checks ORDER BY row_id"
    )
    assert rows == [
        ("no", False, 0.0, "the output lacks: mentions, madrid", "llm-rubric"),
        ("yes", True, 1.0, "every rubric word is there", "llm-rubric"),
    ]
    assert query(data_dir, "SELECT count(*), min(judge_model) FROM judge_cache") == [
        (2, "judge-small")
    ]
    emu.store.reset_counts()
    again = invoke(
        "grade", "judged", "--judge-model", "judge-small", "--fail-under", "0.9",
        "--data-dir", str(data_dir), "--base-url", emu.url,
    )  # fmt: skip
    assert again.exit_code == 3
    assert sum(emu.store.request_counts.values()) == 0
    assert "judge requests / cached" in again.stdout and "0 / 2" in again.stdout


@pytest.mark.usefixtures("api_key")
def test_bad_input_exits_2_before_anything_is_sent(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    plain = write_csv(tmp_path / "plain.csv", ["id", "prompt", "model"], [["a", "Hi", MODEL]])
    judged = write_csv(
        tmp_path / "judged.csv", ["id", "prompt", "model", "__expected"],
        [["a", "Hi", MODEL, "llm-rubric: friendly"]],
    )  # fmt: skip
    no_checks = replay(emu, data_dir, plain, "r", "--fail-under", "0.9")
    assert no_checks.exit_code == 2
    assert no_checks.stderr == f"error: --fail-under: {plain} has no checks (__expected columns)\n"
    no_judge = replay(emu, data_dir, judged, "r", "--fail-under", "0.9")
    assert no_judge.exit_code == 2
    assert "name a --judge-model" in no_judge.stderr
    out_of_range = replay(emu, data_dir, judged, "r", "--fail-under", "1.5")
    assert out_of_range.exit_code == 2
    assert sum(emu.store.request_counts.values()) == 0
    unknown = invoke("grade", "nope", "--data-dir", str(data_dir))
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: no warehouse at ")


def test_the_emulator_judges_in_json_only_when_asked() -> None:
    judged = json_reply(
        "<rubric>\nLisbon trams\n</rubric>\n<output>\nThe trams of lisbon.\n</output>"
    )
    assert orjson.loads(judged) == {
        "pass": True, "score": 1.0, "reason": "every rubric word is there"
    }  # fmt: skip
    assert not reply_text("<rubric>\nx\n</rubric>").startswith("{")

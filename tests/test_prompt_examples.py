"""Every shipped prompt set in data/prompts/ replays as shipped against the default emulator."""

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emulator.server import RunningEmulator
from flows.cli import app

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "data" / "prompts").glob("*.csv"))


def test_there_are_examples_to_check() -> None:
    assert {p.name for p in EXAMPLES} >= {"agent.csv", "basic.csv", "branches.csv", "threads.csv"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_a_shipped_example_replays_against_the_default_emulator(
    example: Path,
    prefect_harness: None,
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    emulator = make_emulator()  # the defaults of `convo-etl emulator`
    arguments = ["replay", str(example), "--base-url", emulator.url, "--data-dir", str(data_dir)]
    outcome = CliRunner().invoke(app, arguments)
    assert outcome.exit_code == 0, outcome.output

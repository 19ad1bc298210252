"""`convo-etl replay-compare`: two real replays whose outputs differ in known rows list exactly
those regressions and fixes; matrix runs carry variants; repeats flag flaky rows; the HTML page
renders in headless chromium."""

import csv
from collections.abc import Callable
from pathlib import Path

import duckdb
import orjson
import pytest
from test_replay_report import parse_html, run_chromium
from typer.testing import CliRunner, Result

from emulator.replies import reply_text
from emulator.server import RunningEmulator
from flows.cli import app

MakeEmulator = Callable[..., RunningEmulator]
MODEL = "mistral-small-latest"
HEADER = ["id", "prompt", "model", "__expected", "__expected1"]


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def replay(emu: RunningEmulator, data_dir: Path, prompts: Path, run_id: str, *more: str) -> Result:
    return invoke(
        "replay", str(prompts), "--data-dir", str(data_dir), "--base-url", emu.url,
        "--run-id", run_id, "--concurrency", "1", *more,
    )  # fmt: skip


@pytest.fixture
def two_runs(tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator) -> Path:
    """Run `base` and `next`: row b regresses (its prompt changed), row c is fixed, a holds."""
    emu = make_emulator(conversations=1)
    checks = ["contains: apples", "max-tokens: 500"]
    base = write_csv(
        tmp_path / "base.csv",
        [["a", "Tell me about <b>bread</b>.", MODEL, "contains: bread", ""],
         ["b", "Tell me about apples.", MODEL, *checks],
         ["c", "Tell me about figs.", MODEL, "contains: kiwi", ""]],
    )  # fmt: skip
    changed = write_csv(
        tmp_path / "next.csv",
        [["a", "Tell me about <b>bread</b>.", MODEL, "contains: bread", ""],
         ["b", "Tell me about pears.", MODEL, *checks],
         ["c", "Tell me about kiwi.", MODEL, "contains: kiwi", ""]],
    )  # fmt: skip
    assert replay(emu, data_dir, base, "base").exit_code == 0
    assert replay(emu, data_dir, changed, "next").exit_code == 0
    return data_dir


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_compare_lists_exactly_the_regressions_and_fixes(two_runs: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text(f"model,input_per_million,output_per_million\n{MODEL},1000000,0\n")
    result = invoke(
        "replay-compare", "base", "next", "--format", "json", "--prices", str(prices),
        "--data-dir", str(two_runs),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.stdout)
    assert document["baseline_run_id"] == "base" and document["cost_is_estimate"] is True
    regressions = [
        (c["run_id"], c["row_id"], c["type"], c["value"]) for c in document["regressions"]
    ]
    assert regressions == [("next", "b", "contains", "apples")]
    (regression,) = document["regressions"]
    assert regression["baseline_output"] == reply_text("Tell me about apples.")
    assert regression["output"] == reply_text("Tell me about pears.")
    assert regression["reason"] == "output does not contain 'apples'"
    fixes = [(c["run_id"], c["row_id"], c["type"], c["value"]) for c in document["fixes"]]
    assert fixes == [("next", "c", "contains", "kiwi")]
    runs = {run["run_id"]: run for run in document["runs"]}
    assert [runs["base"]["pass_rate"], runs["next"]["pass_rate"]] == pytest.approx([2 / 3, 2 / 3])
    prompt_tokens = sum(len(p.split()) for p in ["Tell me about <b>bread</b>.",
                        "Tell me about apples.", "Tell me about figs."])  # fmt: skip
    assert runs["base"]["prompt_tokens"] == prompt_tokens
    assert runs["base"]["estimated_cost_usd"] == pytest.approx(prompt_tokens)
    assert runs["base"]["latency_p50_ms"] > 0 and runs["base"]["ttft_p95_ms"] > 0

    table = invoke("replay-compare", "base", "next", "--data-dir", str(two_runs))
    assert table.exit_code == 0, table.output
    assert "regression" in table.stdout and "fix" in table.stdout
    assert "costs are estimates" in table.stdout


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_compare_page_renders_in_headless_chromium(
    two_runs: Path, tmp_path: Path, chromium: str
) -> None:
    page = tmp_path / "compare.html"
    result = invoke(
        "replay-compare", "base", "next", "--html", str(page), "--data-dir", str(two_runs)
    )
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    dom = parse_html(run_chromium(chromium, page, tmp_path, "--dump-dom").stdout)
    changes = dom.find_all("tr", class_="change")
    assert [(tr.attrs["data-row-id"], tr.attrs["class"]) for tr in changes] == [
        ("b", "change regression"), ("c", "change fix")
    ]  # fmt: skip
    diff = changes[0].find_all("td", class_="diff")[0]
    assert next(node.text() for node in diff.find_all("del")).startswith("apples")
    assert next(node.text() for node in diff.find_all("ins")).startswith("pears")
    runs = dom.find_all("tr", class_="run")
    assert [tr.attrs["data-run-id"] for tr in runs] == ["base", "next"]


@pytest.mark.usefixtures("api_key")
def test_compare_needs_two_known_runs(data_dir: Path, two_runs: Path) -> None:
    one = invoke("replay-compare", "base", "--data-dir", str(data_dir))
    assert one.exit_code == 2
    assert one.stderr == "error: replay-compare needs two or more different run ids\n"
    unknown = invoke("replay-compare", "base", "nope", "--data-dir", str(data_dir))
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: no replay run with id 'nope' in ")


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_a_matrix_run_keeps_each_variant_apart(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(conversations=1)
    prompts = write_csv(
        tmp_path / "matrix.csv",
        [["a", "Tell me about bread.", "", "contains: bread", ""],
         ["t", "Think about tea.", "", "contains: tea", ""]],
    )  # fmt: skip
    result = replay(
        emu, data_dir, prompts, "matrix", "--model", "mistral-small-latest",
        "--model", "magistral-small-latest", "--no-stream",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pass rate mistral-small-latest" in result.stdout
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        results = con.execute(
            "SELECT variant, row_id, model FROM replay_results ORDER BY variant, row_id"
        ).fetchall()
        verdicts = con.execute(
            "SELECT variant, row_id, pass FROM replay_verdicts ORDER BY variant, row_id"
        ).fetchall()
    assert results == [
        ("magistral-small-latest", "a", "magistral-small-latest"),
        ("magistral-small-latest", "t", "magistral-small-latest"),
        ("mistral-small-latest", "a", "mistral-small-latest"),
        ("mistral-small-latest", "t", "mistral-small-latest"),
    ]
    assert [passed for *_, passed in verdicts] == [True] * 4
    page = tmp_path / "report.html"
    report = invoke("replay-report", "matrix", "-o", str(page), "--data-dir", str(data_dir))
    assert report.exit_code == 0, report.output
    dom = parse_html(page.read_text(encoding="utf-8"))
    variants = [td.text() for td in dom.find_all("td", class_="variant")]
    assert sorted(variants) == ["magistral-small-latest"] * 2 + ["mistral-small-latest"] * 2


@pytest.mark.usefixtures("prefect_harness", "api_key")
def test_repeats_flag_a_row_that_both_passes_and_fails_as_flaky(
    tmp_path: Path, data_dir: Path, make_emulator: MakeEmulator
) -> None:
    # Stream errors drawn from the seeded generator, one request at a time: a fixed mix.
    emu = make_emulator(conversations=1, seed=5, stream_error_rate=0.5)
    prompts = write_csv(
        tmp_path / "one.csv", [["a", "Tell me about bread.", MODEL, "contains: bread", ""]]
    )
    first = replay(emu, data_dir, prompts, "flaky", "--repeat", "8")
    assert first.exit_code == 1  # some repeats failed
    assert "flaky a" in first.stdout
    second = replay(emu, data_dir, prompts, "steady", "--repeat", "2")
    compared = invoke(
        "replay-compare", "flaky", "steady", "--format", "json", "--data-dir", str(data_dir)
    )
    assert compared.exit_code == 0, compared.output
    flaky = orjson.loads(compared.stdout)["flaky"]
    assert [(line["run_id"], line["row_id"]) for line in flaky][:1] == [("flaky", "a")]
    assert second.exit_code in (0, 1)
    page = tmp_path / "flaky.html"
    report = invoke("replay-report", "flaky", "-o", str(page), "--data-dir", str(data_dir))
    assert report.exit_code == 0, report.output
    verdicts = parse_html(page.read_text(encoding="utf-8")).find_all("td", class_="verdict")
    assert len(verdicts) == 8
    assert all(cell.find_all("span", class_="flaky") for cell in verdicts)
    assert {cell.find_all("span")[0].text() for cell in verdicts} == {"pass", "fail"}

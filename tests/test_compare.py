"""Comparing runs: pass rates, exactly the known regressions and fixes, latency, tokens and cost."""

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from transform.compare import compare_runs
from transform.grading import checks_frame, grade, thresholds_frame
from transform.outcomes import row_verdicts
from transform.prices import parse_prices
from transform.prompts import parse_prompts

PROMPTS = (
    "id,prompt,__expected,__expected1\n"
    "capital,Capital of France?,contains: Paris,max-tokens: 20\n"
    "sum,2+2?,regex: \\b4\\b,\n"
    "json,Give JSON,is-json,\n"
)
PRICES = b"model,input_per_million,output_per_million\nsmall,1,3\nlarge,2,6\n"


def run(run_id: str, model: str, answers: dict[tuple[str, int], tuple[str, int, float]]) -> list:
    return [
        {
            "run_id": run_id,
            "row_id": row_id,
            "repeat_index": repeat,
            "status": "ok",
            "error": None,
            "output_text": output,
            "latency_ms": latency,
            "ttft_ms": latency / 4,
            "prompt_tokens": 100,
            "completion_tokens": tokens,
            "model": model,
        }
        for (row_id, repeat), (output, tokens, latency) in answers.items()
    ]


def graded_runs() -> dict[str, Any]:
    checks = {r.row_id: r.checks for r in parse_prompts(PROMPTS.encode(), "p.csv", "small")}
    results = pl.DataFrame(
        run(
            "a",
            "small",
            {
                ("capital", 0): ("Paris.", 10, 100.0),
                ("capital", 1): ("Paris, France.", 30, 200.0),
                ("sum", 0): ("4", 5, 300.0),
                ("sum", 1): ("five", 5, 400.0),
                ("json", 0): ('{"ok": true}', 10, 500.0),
                ("json", 1): ('{"ok": true}', 10, 600.0),
            },
        )
        + run(
            "b",
            "large",
            {
                ("capital", 0): ("Lyon.", 10, 1000.0),
                ("capital", 1): ("Paris.", 10, 1000.0),
                ("sum", 0): ("4", 5, 1000.0),
                ("sum", 1): ("4", 5, 1000.0),
                ("json", 0): ("not json", 10, 1000.0),
            },
        )
    )
    verdicts = grade(results, checks_frame(checks), datetime(2026, 11, 28, tzinfo=UTC))
    rows = row_verdicts(verdicts, thresholds_frame(checks))
    return {"results": results, "verdicts": verdicts, "rows": rows}


def test_regressions_and_fixes_are_exactly_the_flipped_checks_with_both_outputs() -> None:
    comparison = compare_runs(**graded_runs(), run_ids=["a", "b"])
    assert comparison.baseline_run_id == "a"
    changes = comparison.changes.select(
        "run_id",
        "row_id",
        "repeat_index",
        "check_index",
        "type",
        "change",
        "baseline_output",
        "output",
    )
    assert list(changes.iter_rows()) == [
        ("b", "capital", 0, 0, "contains", "regression", "Paris.", "Lyon."),
        ("b", "json", 0, 0, "is-json", "regression", '{"ok": true}', "not json"),
        ("b", "capital", 1, 1, "max-tokens", "fix", "Paris, France.", "Paris."),
        ("b", "sum", 1, 0, "regex", "fix", "five", "4"),
    ]
    assert comparison.regressions["reason"].to_list() == [
        "output does not contain 'Paris'",
        "output is not valid JSON",
    ]
    assert comparison.fixes["baseline_reason"].to_list() == [
        "completion tokens 30 > 20",
        "output does not match /\\b4\\b/",
    ]


def test_each_run_gets_pass_rate_latency_ttft_tokens_and_estimated_cost() -> None:
    prices = parse_prices(PRICES, "prices.csv")
    comparison = compare_runs(**graded_runs(), run_ids=["b", "a"], prices=prices)
    assert comparison.cost_is_estimate
    runs = {r["run_id"]: r for r in comparison.runs.to_dicts()}
    assert list(comparison.runs["run_id"]) == ["b", "a"]
    assert runs["a"] == {
        "run_id": "a",
        "results": 6,
        "passed": 4,
        "failed": 2,
        "pending": 0,
        "pass_rate": pytest.approx(4 / 6),
        "latency_p50_ms": 350.0,
        "latency_p95_ms": 575.0,
        "ttft_p50_ms": 87.5,
        "ttft_p95_ms": 143.75,
        "prompt_tokens": 600,
        "completion_tokens": 70,
        "estimated_cost_usd": pytest.approx((600 * 1 + 70 * 3) / 1e6),
        "unpriced_results": 0,
    }
    assert (runs["b"]["results"], runs["b"]["passed"], runs["b"]["failed"]) == (5, 3, 2)
    assert runs["b"]["estimated_cost_usd"] == pytest.approx((500 * 2 + 40 * 6) / 1e6)
    assert comparison.changes.filter(pl.col("run_id") == "a")["change"].to_list() == [
        "regression",
        "regression",
        "fix",
        "fix",
    ]


def test_a_model_without_a_price_is_counted_not_guessed() -> None:
    prices = parse_prices(b"model,input_per_million,output_per_million\nsmall,1,3\n", "p.csv")
    runs = compare_runs(**graded_runs(), run_ids=["a", "b"], prices=prices).runs
    assert list(runs.select("run_id", "unpriced_results").iter_rows()) == [("a", 0), ("b", 5)]
    assert runs["estimated_cost_usd"][1] == 0.0


def test_a_single_run_has_no_changes() -> None:
    comparison = compare_runs(**graded_runs(), run_ids=["a"])
    assert comparison.changes.height == 0
    assert comparison.runs["results"].to_list() == [6]

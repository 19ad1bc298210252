"""Grading: every check type's verdict on known outputs, negation, thresholds, repeats and flaky."""

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from transform.check_schemas import REPLAY_CHECKS
from transform.checks import RowChecks
from transform.grading import checks_frame, grade, metadata_frame, thresholds_frame
from transform.outcomes import repeat_summary, row_verdicts, run_pass_rates
from transform.prices import parse_prices
from transform.prompts import parse_prompts

GRADED_AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
RESULT_SCHEMA = {
    "run_id": pl.String,
    "row_id": pl.String,
    "repeat_index": pl.Int32,
    "status": pl.String,
    "error": pl.String,
    "output_text": pl.String,
    "latency_ms": pl.Float64,
    "ttft_ms": pl.Float64,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "model": pl.String,
}
PRICES = parse_prices(b"model,input_per_million,output_per_million\nm,2,6\n", "prices.csv")


def result(row_id: str = "q", output: str | None = "", **changes: Any) -> dict[str, Any]:
    base = {
        "run_id": "run-a",
        "row_id": row_id,
        "repeat_index": 0,
        "status": "ok",
        "error": None,
        "output_text": output,
        "latency_ms": 100.0,
        "ttft_ms": 40.0,
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "model": "m",
    }
    return {**base, **changes}


def results(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=RESULT_SCHEMA)


def prompt_set(header: str, *lines: str) -> dict[str, RowChecks]:
    text = "\n".join([header, *lines]) + "\n"
    return {r.row_id: r.checks for r in parse_prompts(text.encode(), "p.csv", default_model="m")}


def graded(cell: str, *rows: dict[str, Any]) -> list[tuple[bool | None, str | None]]:
    quoted = '"' + cell.replace('"', '""') + '"'
    checks = prompt_set("id,prompt,__expected", f"q,hi,{quoted}")
    verdicts = grade(results(*rows), checks_frame(checks), GRADED_AT, PRICES)
    return list(verdicts.select("pass", "reason").iter_rows())


@pytest.mark.parametrize(
    ("cell", "output", "changes", "verdict"),
    [
        ("Paris", "Paris", {}, (True, None)),
        ("Paris", "Paris.", {}, (False, "output does not equal 'Paris'")),
        ("equals: a: b", "a: b", {}, (True, None)),
        ("contains: Par", "In Paris", {}, (True, None)),
        ("contains: par", "In Paris", {}, (False, "output does not contain 'par'")),
        ("icontains: PARIS", "in paris", {}, (True, None)),
        (
            "icontains: lyon",
            "in paris",
            {},
            (False, "output does not contain (ignoring case) 'lyon'"),
        ),
        ("starts-with: The", "The end", {}, (True, None)),
        ("starts-with: end", "The end", {}, (False, "output does not start with 'end'")),
        (r"regex: ^\d{3}$", "123", {}, (True, None)),
        (r"regex: ^\d{3}$", "1234", {}, (False, r"output does not match /^\d{3}$/")),
        ("contains-any: cat, dog", "a dog", {}, (True, None)),
        ("contains-any: cat, dog", "a cow", {}, (False, "output contains none of 'cat, dog'")),
        ("contains-all: cat, dog", "cat and dog", {}, (True, None)),
        (
            "contains-all: cat, dog",
            "cat only",
            {},
            (False, "output does not contain all of 'cat, dog'"),
        ),
        ("is-json", '{"a": 1}', {}, (True, None)),
        ("is-json", "{a: 1}", {}, (False, "output is not valid JSON")),
        ('is-json: {"required": ["a"]}', '{"a": 1}', {}, (True, None)),
        (
            'is-json: {"required": ["a"]}',
            '{"b": 1}',
            {},
            (False, "output does not match the schema: 'a' is a required property"),
        ),
        ("levenshtein(1): hello", "hallo", {}, (True, None)),
        ("levenshtein(1): hello", "help", {}, (False, "edit distance from 'hello' is more than 1")),
        ("levenshtein(3): kitten", "sitting", {}, (True, None)),
        ("latency: 100", "", {}, (True, None)),
        ("latency: 100", "", {"latency_ms": 150.5}, (False, "latency 150.5 ms > 100 ms")),
        ("ttft: 50", "", {}, (True, None)),
        (
            "ttft: 50",
            "",
            {"ttft_ms": None},
            (False, "no time to first token (was it streamed?)"),
        ),
        ("max-tokens: 100", "", {}, (True, None)),
        ("max-tokens: 99", "", {}, (False, "completion tokens 100 > 99")),
        ("cost: 0.0026", "", {}, (True, None)),
        ("cost: 0.0025", "", {}, (False, "estimated cost 0.0026 USD > 0.0025 USD")),
        (
            "cost: 1",
            "",
            {"model": "unpriced"},
            (False, "no estimated cost (the model has no price, or tokens were not reported)"),
        ),
        ("not-contains: Lyon", "Paris", {}, (True, None)),
        ("not-contains: Par", "Paris", {}, (False, "output contains 'Par'")),
        ("not-regex: ^P", "Paris", {}, (False, "output matches /^P/")),
        ("not-is-json", "{}", {}, (False, "output is valid JSON")),
        (
            "not-levenshtein(1): hello",
            "hallo",
            {},
            (False, "edit distance from 'hello' is 1, within 1"),
        ),
        ("not-latency: 100", "", {}, (False, "latency 100 ms <= 100 ms")),
        (
            "not-latency: 100",
            "",
            {"latency_ms": None},
            (False, "the turn's latency was not recorded"),
        ),
        ("not-max-tokens: 10", "", {}, (True, None)),
    ],
)
def test_each_check_type_on_a_known_output(
    cell: str, output: str, changes: dict[str, Any], verdict: tuple[bool, str | None]
) -> None:
    assert graded(cell, result(output=output, **changes)) == [verdict]


def test_levenshtein_on_long_outputs_is_exact_up_to_the_distance() -> None:
    expected = "lorem ipsum " * 400
    close = expected[:2000] + "X" + expected[2001:-3]
    far = expected[:1000] + "XXXXXX" + expected[1006:]
    assert graded(f"levenshtein(4): {expected.strip()}", result(output=close.strip())) == [
        (True, None)
    ]
    assert graded(f"not-levenshtein(5): {expected.strip()}", result(output=far.strip())) == [
        (True, None)
    ]


def test_a_missing_output_is_graded_as_empty_text() -> None:
    assert graded("not-contains: x", result(output=None)) == [(True, None)]


def test_a_failed_turn_fails_every_check_naming_its_status() -> None:
    checks = prompt_set("id,prompt,__expected,__expected1", "q,hi,contains: a,llm-rubric: kind")
    failed = result(output=None, status="error", error="HTTP 500 from the API")
    verdicts = grade(results(failed), checks_frame(checks), GRADED_AT)
    reason = "the turn did not succeed (status error): HTTP 500 from the API"
    assert sorted(verdicts.select("type", "pass", "score", "reason", "grader").iter_rows()) == [
        ("contains", False, 0.0, reason, "rule"),
        ("llm-rubric", False, 0.0, reason, "llm-rubric"),
    ]


def test_verdict_rows_have_the_replay_checks_columns_and_types() -> None:
    checks = prompt_set("id,prompt,__expected,__expected1", "q,hi,contains: a,llm-rubric: kind")
    verdicts = grade(results(result(output="a")), checks_frame(checks), GRADED_AT)
    table = verdicts.sort("check_index").to_arrow().cast(REPLAY_CHECKS)
    assert table.to_pylist() == [
        {
            "run_id": "run-a",
            "row_id": "q",
            "repeat_index": 0,
            "variant": "",
            "check_index": 0,
            "type": "contains",
            "value": "a",
            "pass": True,
            "score": 1.0,
            "reason": None,
            "grader": "rule",
            "graded_at": GRADED_AT,
        },
        {
            "run_id": "run-a",
            "row_id": "q",
            "repeat_index": 0,
            "variant": "",
            "check_index": 1,
            "type": "llm-rubric",
            "value": "kind",
            "pass": None,
            "score": None,
            "reason": None,
            "grader": "llm-rubric",
            "graded_at": None,
        },
    ]


def test_results_of_rows_without_checks_get_no_verdicts() -> None:
    checks = prompt_set("id,prompt,__expected", "q,hi,a", "r,hi,")
    verdicts = grade(results(result("q", "a"), result("r", "a")), checks_frame(checks), GRADED_AT)
    assert verdicts["row_id"].to_list() == ["q"]


def test_a_row_passes_when_its_share_of_passing_checks_reaches_the_threshold() -> None:
    checks = prompt_set(
        "id,prompt,__expected,__expected1,__expected2,__expected3,__threshold",
        "half,hi,contains: a,contains: b,contains: c,contains: d,0.5",
        "all,hi,contains: a,contains: b,,,",
    )
    outputs = results(
        result("half", "a b", repeat_index=0),
        result("half", "a", repeat_index=1),
        result("all", "a b", repeat_index=0),
        result("all", "b", repeat_index=1),
    )
    verdicts = grade(outputs, checks_frame(checks), GRADED_AT)
    rows = row_verdicts(verdicts, thresholds_frame(checks))
    assert list(rows.select("row_id", "repeat_index", "passed", "share", "pass").iter_rows()) == [
        ("all", 0, 2, 1.0, True),
        ("all", 1, 1, 0.5, False),
        ("half", 0, 2, 0.5, True),
        ("half", 1, 1, 0.25, False),
    ]


def test_a_row_waiting_for_its_judge_is_pending_unless_already_decided() -> None:
    checks = prompt_set(
        "id,prompt,__expected,__expected1,__threshold",
        "open,hi,contains: a,llm-rubric: kind,",
        "lost,hi,contains: z,llm-rubric: kind,",
        "won,hi,contains: a,llm-rubric: kind,0.5",
    )
    outputs = results(result("open", "a"), result("lost", "a"), result("won", "a"))
    verdicts = grade(outputs, checks_frame(checks), GRADED_AT)
    rows = row_verdicts(verdicts, thresholds_frame(checks))
    assert list(rows.select("row_id", "pending", "pass").iter_rows()) == [
        ("lost", 1, False),
        ("open", 1, None),
        ("won", 1, True),
    ]


def test_repeats_give_a_pass_rate_per_row_and_flag_flaky_rows() -> None:
    checks = prompt_set("id,prompt,__expected", "steady,hi,yes", "flaky,hi,yes", "broken,hi,yes")
    outputs = results(
        *(result("steady", "yes", repeat_index=i) for i in range(3)),
        *(result("flaky", answer, repeat_index=i) for i, answer in enumerate(["yes", "no", "yes"])),
        *(result("broken", "no", repeat_index=i) for i in range(3)),
    )
    rows = row_verdicts(grade(outputs, checks_frame(checks), GRADED_AT), thresholds_frame(checks))
    summary = repeat_summary(rows).select("row_id", "repeats", "passed", "pass_rate", "flaky")
    assert list(summary.iter_rows()) == [
        ("broken", 3, 0, 0.0, False),
        ("flaky", 3, 2, 2 / 3, True),
        ("steady", 3, 3, 1.0, False),
    ]
    assert list(run_pass_rates(rows).iter_rows()) == [("run-a", 9, 5, 4, 0, 5 / 9)]


def test_checks_sharing_a_type_but_not_a_value_are_graded_each_on_their_own() -> None:
    checks = prompt_set(
        "id,prompt,__expected",
        *(f"q{i},hi,regex: ^{i}$" for i in range(5)),
    )
    outputs = results(*(result(f"q{i}", str(i if i % 2 else i + 1)) for i in range(5)))
    verdicts = grade(outputs, checks_frame(checks), GRADED_AT).sort("row_id")
    assert verdicts["pass"].to_list() == [False, True, False, True, False]


def test_variants_are_kept_apart_and_rows_carry_their_labels() -> None:
    checks = prompt_set(
        "id,prompt,__expected,__description,__threshold,__metadata:topic",
        "q,hi,contains: a,greets,0.5,intro",
        "r,hi,contains: a,,,",
    )
    outputs = results(result("q", "a"), result("q", "b")).with_columns(
        variant=pl.Series(["small", "large"])
    )
    rows = row_verdicts(grade(outputs, checks_frame(checks), GRADED_AT), thresholds_frame(checks))
    assert list(rows.select("variant", "pass").iter_rows()) == [("large", False), ("small", True)]
    assert list(thresholds_frame(checks).iter_rows()) == [("q", 0.5, "greets"), ("r", 1.0, None)]
    assert list(metadata_frame(checks).iter_rows()) == [("q", "topic", "intro")]

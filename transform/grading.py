"""Grade replay results against their rows' checks, as polars expressions over all results.

Results and checks are joined into one long frame (a line per result and check) and each check
type is one vectorised expression over every line of that type, with the check's value as a
column; only levenshtein and is-json call Python, once per distinct (output, value) pair.
llm-rubric lines stay pending (pass null) until `apply_judgements` fills them in.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
import polars as pl
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from transform.check_schemas import REPLAY_CHECKS
from transform.checks import JUDGED_TYPES, RowChecks
from transform.prices import PriceTable, with_estimated_cost
from transform.replay import OK

VERDICT_SCHEMA = pl.from_arrow(REPLAY_CHECKS.empty_table()).schema
VERDICT_COLUMNS = tuple(VERDICT_SCHEMA.names())
RESULT_KEYS = ("run_id", "row_id", "repeat_index", "variant")
VERDICT_KEYS = (*RESULT_KEYS, "check_index")
GRADED_AT = VERDICT_SCHEMA["graded_at"]
RULE_GRADER = "rule"
JUDGE_GRADER = "llm-rubric"
NO_VARIANT = ""
CHECKS_SCHEMA = {
    "row_id": pl.String,
    "check_index": pl.Int32,
    "kind": pl.String,
    **{key: VERDICT_SCHEMA[key] for key in ("type", "value")},
    "negate": pl.Boolean,
    "number": pl.Float64,
    "items": pl.List(pl.String),
}


@dataclass(frozen=True)
class _Rule:
    """How one check type decides: `holds` (null when the measure is missing) and why it failed."""

    holds: pl.Expr
    failed: Callable[[bool], pl.Expr]
    missing: str = "the measure was not recorded"


def checks_frame(checks_by_row: Mapping[str, RowChecks]) -> pl.DataFrame:
    """One line per (row_id, check): a prompt set's checks as a frame, built once per set."""
    columns: dict[str, list[object]] = {name: [] for name in CHECKS_SCHEMA}
    for row_id, row in checks_by_row.items():
        for check in row.checks:
            columns["row_id"].append(row_id)
            columns["check_index"].append(check.index)
            columns["kind"].append(check.type)
            columns["type"].append(check.label)
            columns["value"].append(check.value)
            columns["negate"].append(check.negate)
            columns["number"].append(check.number)
            columns["items"].append(list(check.items) if check.items else None)
    return pl.DataFrame(columns, schema=CHECKS_SCHEMA)


def thresholds_frame(checks_by_row: Mapping[str, RowChecks]) -> pl.DataFrame:
    """row_id, threshold and description of every row, for row verdicts and reports."""
    return pl.DataFrame(
        {
            "row_id": list(checks_by_row),
            "threshold": [row.threshold for row in checks_by_row.values()],
            "description": [row.description for row in checks_by_row.values()],
        },
        schema={"row_id": pl.String, "threshold": pl.Float64, "description": pl.String},
    )


def metadata_frame(checks_by_row: Mapping[str, RowChecks]) -> pl.DataFrame:
    """row_id, key, value for every `__metadata:<key>` cell, to group reports by."""
    lines = [
        (row_id, key, value)
        for row_id, row in checks_by_row.items()
        for key, value in row.metadata.items()
    ]
    schema = {"row_id": pl.String, "key": pl.String, "value": pl.String}
    return pl.DataFrame(lines, schema=schema, orient="row")


def grade(
    results: pl.DataFrame,
    checks: pl.DataFrame,
    graded_at: datetime,
    prices: PriceTable | None = None,
) -> pl.DataFrame:
    """Verdict rows (REPLAY_CHECKS columns) for every result whose row has checks.

    `checks` comes from `checks_frame`. Results need run_id, row_id, repeat_index, status,
    error and output_text, plus what their checks measure: latency_ms, ttft_ms,
    completion_tokens, and prompt_tokens and model for cost; variant is optional.
    A result whose status is not ok fails each of its checks, naming the status; `cost` checks
    need `prices` (a model without a price fails with that reason). Rows come grouped by check
    type, not sorted.
    """
    if "variant" not in results.columns:
        results = results.with_columns(variant=pl.lit(NO_VARIANT))
    if checks.filter(pl.col("kind") == "cost").height:
        results = with_estimated_cost(results, prices or PriceTable.empty())
    groups = checks.partition_by("kind", "negate", as_dict=True)
    graded = [
        _graded(results.lazy().join(group.lazy(), on="row_id"), str(kind), bool(negate))
        for (kind, negate), group in groups.items()
    ]
    stamp = pl.lit(graded_at, dtype=GRADED_AT)
    return (
        pl.concat(graded)
        .with_columns(
            graded_at=pl.when(pl.col("pass").is_not_null()).then(stamp),
            repeat_index=pl.col("repeat_index").cast(pl.Int32),
        )
        .select(VERDICT_COLUMNS)
        .collect()
    )


def _graded(lines: pl.LazyFrame, kind: str, negate: bool) -> pl.LazyFrame:
    """The verdicts of one check type: pass, score, reason (failures only) and grader."""
    ok = pl.col("status") == OK
    not_ok = pl.concat_str(
        pl.lit("the turn did not succeed (status "),
        pl.col("status"),
        pl.lit(")"),
        pl.when(pl.col("error").is_not_null()).then(pl.lit(": ") + pl.col("error")),
        ignore_nulls=True,
    )
    keep = [*VERDICT_KEYS, "type", "value"]
    if kind in JUDGED_TYPES:
        return lines.select(
            *keep,
            pl.when(ok).then(pl.lit(None, pl.Boolean)).otherwise(pl.lit(False)).alias("pass"),
            score=pl.when(ok).then(pl.lit(None, pl.Float64)).otherwise(pl.lit(0.0)),
            reason=pl.when(ok).then(pl.lit(None, pl.String)).otherwise(not_ok),
            grader=pl.lit(JUDGE_GRADER),
        )
    rule = _RULES[kind]
    decided = (
        _with_measures(lines, kind)
        .with_columns(holds=rule.holds)
        .with_columns(
            (ok & pl.col("holds").is_not_null() & (pl.col("holds") != negate)).alias("pass")
        )
    )
    reason = (
        pl.when(~ok)
        .then(not_ok)
        .when(pl.col("holds").is_null())
        .then(pl.lit(rule.missing))
        .otherwise(rule.failed(negate))
    )
    return decided.select(
        *keep,
        "pass",
        score=pl.col("pass").cast(pl.Float64),
        reason=pl.when(~pl.col("pass")).then(reason),
        grader=pl.lit(RULE_GRADER),
    )


def _with_measures(lines: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    """Add the per-value measures polars has no expression for (these lines are collected)."""
    measures = {
        "levenshtein": ("distance", _pairwise_distance),
        "is-json": ("json_error", _json_errors),
        "contains-any": ("contains_count", _items_found),
        "contains-all": ("contains_count", _items_found),
    }
    if kind not in measures:
        return lines
    name, measure = measures[kind]
    collected = lines.collect()
    return collected.with_columns(measure(collected).alias(name)).lazy()


def _items_found(lines: pl.DataFrame) -> pl.Series:
    """How many of each line's comma-separated values its output contains."""
    found = (
        lines.select(_output(), "items")
        .with_row_index("line")
        .explode("items")
        .group_by("line")
        .agg(pl.col("output_text").str.contains(pl.col("items"), literal=True).sum())
        .sort("line")
    )
    return found["output_text"].cast(pl.Int64)


def _pairwise_distance(lines: pl.DataFrame) -> pl.Series:
    pairs = lines.select(_output(), "value", "number").unique()
    distances = [_distance(o, v, int(n)) for o, v, n in pairs.iter_rows()]
    lookup = pairs.with_columns(distance=pl.Series(distances, dtype=pl.Int64))
    return lines.select(_output(), "value", "number").join(
        lookup, on=["output_text", "value", "number"], how="left", maintain_order="left"
    )["distance"]


def _json_errors(lines: pl.DataFrame) -> pl.Series:
    pairs = lines.select(_output(), "value").unique()
    validators: dict[str, Callable[[object], str | None]] = {}
    errors = []
    for output, schema in pairs.iter_rows():
        if schema not in validators:
            validators[schema] = _schema_validator(schema)
        errors.append(_json_error(output, validators[schema]))
    lookup = pairs.with_columns(json_error=pl.Series(errors, dtype=pl.String))
    return lines.select(_output(), "value").join(
        lookup, on=["output_text", "value"], how="left", maintain_order="left"
    )["json_error"]


def _schema_validator(schema: str) -> Callable[[object], str | None]:
    if not schema:
        return lambda _: None
    validator = validator_for(orjson.loads(schema))(orjson.loads(schema))

    def check(document: object) -> str | None:
        error = best_match(validator.iter_errors(document))
        return None if error is None else f"output does not match the schema: {error.message}"

    return check


def _json_error(output: str, matches_schema: Callable[[object], str | None]) -> str | None:
    try:
        document = orjson.loads(output)
    except orjson.JSONDecodeError:
        return "output is not valid JSON"
    return matches_schema(document)


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, capped at limit + 1: only the band |i - j| <= limit is computed,
    so long outputs cost O(len * limit), and the answer is exact up to the limit."""
    over = limit + 1
    if abs(len(a) - len(b)) > limit:
        return over
    previous = [min(j, over) for j in range(len(b) + 1)]
    for i, char_a in enumerate(a, start=1):
        low, high = max(1, i - limit), min(len(b), i + limit)
        current = [over] * (len(b) + 1)
        current[0] = min(i, over)
        for j in range(low, high + 1):
            current[j] = min(
                previous[j] + 1,
                current[j - 1] + 1,
                previous[j - 1] + (char_a != b[j - 1]),
                over,
            )
        if min(current[low - 1 : high + 1]) >= over:
            return over
        previous = current
    return previous[-1]


def _output() -> pl.Expr:
    return pl.col("output_text").fill_null("").alias("output_text")


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.lit("'") + expr + pl.lit("'")


def _text_rule(holds: pl.Expr, does: str, does_not: str, shown: pl.Expr | None = None) -> _Rule:
    value = _quoted(pl.col("value")) if shown is None else shown

    def failed(negate: bool) -> pl.Expr:
        return pl.lit(f"output {does if negate else does_not} ") + value

    return _Rule(holds, failed)


def _limit_rule(measure: str, label: str, unit: str, missing: str) -> _Rule:
    def failed(negate: bool) -> pl.Expr:
        sign = " <= " if negate else " > "
        return pl.concat_str(
            pl.lit(f"{label} "),
            _number_text(pl.col(measure)),
            pl.lit(f"{unit}{sign}"),
            _number_text(pl.col("number")),
            pl.lit(unit),
        )

    return _Rule(pl.col(measure) <= pl.col("number"), failed, missing)


def _number_text(number: pl.Expr) -> pl.Expr:
    """500.0 as '500', 0.0123456 as '0.012346': short numbers for reasons."""
    whole = number == number.floor()
    return (
        pl.when(whole)
        .then(number.cast(pl.Int64).cast(pl.String))
        .otherwise(number.cast(pl.Float64).round(6).cast(pl.String))
    )


def _distance_failed(negate: bool) -> pl.Expr:
    limit = _number_text(pl.col("number"))
    found = (
        pl.concat_str(pl.col("distance").cast(pl.String), pl.lit(", within "), limit)
        if negate
        else pl.lit("more than ") + limit
    )
    return pl.concat_str(
        pl.lit("edit distance from "), _quoted(pl.col("value")), pl.lit(" is "), found
    )


def _json_failed(negate: bool) -> pl.Expr:
    return pl.lit("output is valid JSON") if negate else pl.col("json_error")


_RULES: dict[str, _Rule] = {
    "equals": _text_rule(_output() == pl.col("value"), "equals", "does not equal"),
    "contains": _text_rule(
        _output().str.contains(pl.col("value"), literal=True), "contains", "does not contain"
    ),
    "icontains": _text_rule(
        _output().str.to_lowercase().str.contains(pl.col("value").str.to_lowercase(), literal=True),
        "contains (ignoring case)",
        "does not contain (ignoring case)",
    ),
    "starts-with": _text_rule(
        _output().str.starts_with(pl.col("value")), "starts with", "does not start with"
    ),
    "regex": _text_rule(
        _output().str.contains(pl.col("value")),
        "matches",
        "does not match",
        pl.lit("/") + pl.col("value") + pl.lit("/"),
    ),
    "contains-any": _text_rule(pl.col("contains_count") > 0, "contains one of", "contains none of"),
    "contains-all": _text_rule(
        pl.col("contains_count") == pl.col("items").list.len(),
        "contains all of",
        "does not contain all of",
    ),
    "levenshtein": _Rule(pl.col("distance") <= pl.col("number"), _distance_failed),
    "is-json": _Rule(pl.col("json_error").is_null(), _json_failed),
    "latency": _limit_rule("latency_ms", "latency", " ms", "the turn's latency was not recorded"),
    "ttft": _limit_rule(
        "ttft_ms", "time to first token", " ms", "no time to first token (was it streamed?)"
    ),
    "max-tokens": _limit_rule(
        "completion_tokens", "completion tokens", "", "the completion token count was not reported"
    ),
    "cost": _limit_rule(
        "estimated_cost_usd",
        "estimated cost",
        " USD",
        "no estimated cost (the model has no price, or tokens were not reported)",
    ),
}

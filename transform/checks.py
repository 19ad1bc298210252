"""Parse and validate a prompt row's check cells (promptfoo's `__expected` conventions).

A cell reads `type: value`; a cell without a known type is `equals` on the whole cell, and a
`not-` prefix negates any type. Everything a grader will need (a compiled regex, a JSON schema,
a number) is proven here, so a broken check is refused before any prompt is sent.
"""

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import polars as pl
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from transform.cells import shown as _shown

TEXT_TYPES = ("equals", "contains", "icontains", "starts-with", "regex")
LIST_TYPES = ("contains-any", "contains-all")
NUMBER_TYPES = ("latency", "ttft", "max-tokens", "cost")
CHECK_TYPES = (*TEXT_TYPES, *LIST_TYPES, *NUMBER_TYPES, "is-json", "levenshtein", "llm-rubric")
JUDGED_TYPES = ("llm-rubric",)
WHOLE_NUMBER_TYPES = ("max-tokens",)
DEFAULT_LEVENSHTEIN_DISTANCE = 5
CHECK_COLUMN = re.compile(r"__expected\d*")
METADATA_PREFIX = "__metadata:"
DESCRIPTION_COLUMN = "__description"
THRESHOLD_COLUMN = "__threshold"
_TYPED_CELL = re.compile(
    r"(?P<type>[a-z][a-z0-9-]*)(?:\((?P<arg>[^)]*)\))?(?::(?P<value>.*))?", re.S
)

Fail = Callable[[str, str], None]


@dataclass(frozen=True)
class Check:
    """One validated check: the base type, whether it is negated, and its parsed value."""

    index: int
    column: str
    type: str
    value: str
    negate: bool = False
    number: float | None = None
    items: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The type as written in the cell (`not-` and a levenshtein distance included)."""
        written = f"not-{self.type}" if self.negate else self.type
        return f"{written}({self.number:g})" if self.type == "levenshtein" else written


@dataclass(frozen=True)
class RowChecks:
    """A row's checks with what judges them as a whole: the share that must pass, and labels."""

    checks: tuple[Check, ...] = ()
    description: str | None = None
    threshold: float = 1.0
    metadata: dict[str, str] = field(default_factory=dict)


def is_eval_column(column: str) -> bool:
    """True for the columns this module reads, which are not sent with the prompt."""
    return (
        CHECK_COLUMN.fullmatch(column) is not None
        or column in (DESCRIPTION_COLUMN, THRESHOLD_COLUMN)
        or column.startswith(METADATA_PREFIX)
    )


def parse_row_checks(cells: dict[str, str], fail: Fail) -> RowChecks:
    """Read a row's check, description, threshold and metadata cells; report problems to `fail`.

    `fail(column, problem)` receives one call per problem; check columns are read in header order.
    """
    checks: list[Check] = []
    for column, raw in cells.items():
        if CHECK_COLUMN.fullmatch(column) and raw.strip():
            check = parse_check(len(checks), column, raw.strip(), fail)
            if check is not None:
                checks.append(check)
    return RowChecks(
        checks=tuple(checks),
        description=cells.get(DESCRIPTION_COLUMN, "").strip() or None,
        threshold=_parse_threshold(cells.get(THRESHOLD_COLUMN, "").strip(), fail),
        metadata={
            column.removeprefix(METADATA_PREFIX): value.strip()
            for column, value in cells.items()
            if column.startswith(METADATA_PREFIX) and value.strip()
        },
    )


def parse_check(index: int, column: str, cell: str, fail: Fail) -> Check | None:
    """Parse one non-empty cell; None (after calling `fail`) when it cannot be graded."""
    matched = _TYPED_CELL.fullmatch(cell)
    if matched is None or not _typed(matched):
        return Check(index, column, "equals", cell)
    written = matched["type"]
    negate = written.startswith("not-")
    base = written.removeprefix("not-")
    if base not in CHECK_TYPES:
        fail(
            column,
            f"unknown check type '{written}' (known: {', '.join(CHECK_TYPES)}; "
            f"write 'equals: ...' to compare the whole cell)",
        )
        return None
    value = (matched["value"] or "").strip()
    return _validated(Check(index, column, base, value, negate), matched["arg"], fail)


def _typed(matched: re.Match[str]) -> bool:
    """A known type, or `word: value` with a space (so `http://x` stays an equals check)."""
    if matched["type"].removeprefix("not-") in CHECK_TYPES:
        return True
    value = matched["value"]
    return value is not None and (not value or value[0].isspace())


def _validated(check: Check, arg: str | None, fail: Fail) -> Check | None:
    column, kind, value = check.column, check.type, check.value
    if arg is not None and kind != "levenshtein":
        fail(column, f"{check.label} takes no '({arg})'")
        return None
    if kind == "levenshtein":
        distance = _number(arg or str(DEFAULT_LEVENSHTEIN_DISTANCE), whole=True)
        if distance is None:
            fail(column, f"levenshtein({arg}): the distance is not a whole number >= 0")
            return None
        return _with(check, number=distance)
    if kind in NUMBER_TYPES:
        number = _number(value, whole=kind in WHOLE_NUMBER_TYPES)
        if number is None:
            wanted = "a whole number >= 0" if kind in WHOLE_NUMBER_TYPES else "a number >= 0"
            fail(column, f"{check.label}: {_shown(value)} is not {wanted}")
            return None
        return _with(check, number=number)
    if kind in LIST_TYPES:
        items = tuple(
            v.strip()
            for v in next(csv.reader(io.StringIO(value), skipinitialspace=True), [])
            if v.strip()
        )
        if not items:
            fail(column, f"{check.label} needs comma-separated values")
            return None
        return _with(check, items=items)
    if kind == "is-json":
        return check if _schema_ok(check, fail) else None
    if not value and kind != "equals":
        fail(column, f"{check.label} needs a value")
        return None
    if kind == "regex" and not _regex_ok(check, fail):
        return None
    return check


def _with(check: Check, **changes: object) -> Check:
    return Check(**{**check.__dict__, **changes})


def _number(raw: str, whole: bool) -> float | None:
    try:
        number = float(int(raw)) if whole else float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _regex_ok(check: Check, fail: Fail) -> bool:
    """Compile with the engine that grades (Rust regex syntax: no look-around, no backrefs)."""
    try:
        pl.select(pl.lit("").str.contains(check.value))
    except pl.exceptions.PolarsError as error:
        fail(check.column, f"regex {_shown(check.value)} does not compile: {_regex_problem(error)}")
        return False
    return True


def _regex_problem(error: Exception) -> str:
    """The one line of polars' multi-line message that says what is wrong."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return named[0] if named else lines[0].removeprefix("regex error: ")


def _schema_ok(check: Check, fail: Fail) -> bool:
    if not check.value:
        return True
    try:
        schema = orjson.loads(check.value)
    except orjson.JSONDecodeError:
        fail(check.column, f"is-json: the schema {_shown(check.value)} is not valid JSON")
        return False
    if not isinstance(schema, dict | bool):
        fail(check.column, f"is-json: the schema {_shown(check.value)} is not a JSON object")
        return False
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        fail(check.column, f"is-json: the schema is invalid: {error.message}")
        return False
    return True


def _parse_threshold(raw: str, fail: Fail) -> float:
    if not raw:
        return 1.0
    try:
        threshold = float(raw)
    except ValueError:
        threshold = math.nan
    if not 0 <= threshold <= 1:
        fail(THRESHOLD_COLUMN, f"{_shown(raw)} is not a number between 0 and 1")
        return 1.0
    return threshold

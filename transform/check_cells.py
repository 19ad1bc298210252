"""A prompt set's checks on their own: read from a checks CSV, kept with a run, read back.

A run keeps each row's checks as the cells that write them (JSON), not as the parsed checks, so
`grade RUN_ID` re-reads them with the same parser and a stored run never goes stale when the
parsed form changes. A checks CSV is any CSV with an `id` column and check columns (a whole
prompt CSV is one); its rows are matched to a run's results by id.
"""

import csv
import io
from collections.abc import Iterable, Mapping

import orjson
import pyarrow as pa

from transform.cells import shown
from transform.check_schemas import REPLAY_ROW_CHECKS
from transform.checks import (
    DESCRIPTION_COLUMN,
    METADATA_PREFIX,
    THRESHOLD_COLUMN,
    RowChecks,
    is_eval_column,
    parse_row_checks,
)
from transform.prompts import PromptSetInvalid


def check_cells(checks: RowChecks) -> dict[str, str]:
    """The cells that write `checks` again (each check typed, so it parses back the same)."""
    cells = {check.column: f"{check.label}: {check.value}" for check in checks.checks}
    if checks.description is not None:
        cells[DESCRIPTION_COLUMN] = checks.description
    if checks.threshold != 1.0:
        cells[THRESHOLD_COLUMN] = repr(checks.threshold)
    cells |= {f"{METADATA_PREFIX}{key}": value for key, value in checks.metadata.items()}
    return cells


def row_checks_table(run_id: str, checks_by_row: Mapping[str, RowChecks]) -> pa.Table:
    """replay_row_checks rows: one per row that has checks."""
    rows = [
        {
            "run_id": run_id,
            "row_id": row_id,
            "threshold": checks.threshold,
            "description": checks.description,
            "cells": orjson.dumps(check_cells(checks)).decode(),
        }
        for row_id, checks in checks_by_row.items()
        if checks.checks
    ]
    return pa.Table.from_pylist(rows, schema=REPLAY_ROW_CHECKS)


def checks_from_cells(rows: Iterable[tuple[str, str]]) -> dict[str, RowChecks]:
    """RowChecks by row id from stored (row_id, cells JSON) pairs."""
    parsed: dict[str, RowChecks] = {}
    errors: list[str] = []
    for row_id, cells in rows:
        parsed[row_id] = parse_row_checks(
            orjson.loads(cells), lambda column, problem: errors.append(f"{column}: {problem}")
        )
        if errors:
            raise ValueError(f"stored checks of row {row_id} do not parse: {errors[0]}")
    return parsed


def parse_checks_csv(data: bytes, source: str) -> dict[str, RowChecks]:
    """The checks of every row of a CSV with an `id` column, or PromptSetInvalid listing why."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    records = list(csv.reader(io.StringIO(text, newline="")))
    header = [cell.strip() for cell in records[0]] if records else []
    if "id" not in header:
        raise PromptSetInvalid([f"{source}: header, column id: the required column is missing"])
    errors: list[str] = []
    parsed: dict[str, RowChecks] = {}
    for number, record in enumerate(records[1:], start=1):
        if not any(cell.strip() for cell in record):
            continue
        cells = dict(zip(header, record, strict=False))
        row_id = cells.get("id", "").strip()

        def fail(column: str | None, problem: str, number: int = number) -> None:
            errors.append(f"{source}: row {number}, column {column}: {problem}")

        if not row_id:
            fail("id", "the id is empty")
            continue
        if row_id in parsed:
            fail("id", f"duplicate id {shown(row_id)}")
            continue
        eval_cells = {column: cell for column, cell in cells.items() if is_eval_column(column)}
        parsed[row_id] = parse_row_checks(eval_cells, fail)
    if errors:
        raise PromptSetInvalid(errors)
    if not any(checks.checks for checks in parsed.values()):
        raise PromptSetInvalid([f"{source}: no row has a check (__expected columns)"])
    return parsed

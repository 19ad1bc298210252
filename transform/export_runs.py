"""Turn an export run's counters and its failures into EXPORT_RUNS / EXPORT_FAILURES rows."""

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from transform.columns import timestamp_column
from transform.schemas import EXPORT_FAILURES, EXPORT_RUNS

_TIMESTAMP_FIELDS = ("started_at", "finished_at", "fetch_started", "fetch_finished", "failed_at")


def export_run_table(run: Mapping[str, Any]) -> pa.Table:
    """One EXPORT_RUNS row from a mapping of its columns (missing ones are null; run_id is
    required)."""
    if not run.get("run_id"):
        raise ValueError("an export run needs a run_id")
    row = dict(run)
    if row.get("base_url") is not None:
        row["base_url"] = url_without_credentials(str(row["base_url"]))
    return _rows_table([row], EXPORT_RUNS, "export_runs")


def export_failures_table(failures: Sequence[Mapping[str, Any]]) -> pa.Table:
    """EXPORT_FAILURES rows: which run could not fetch which conversation, where and why."""
    return _rows_table(failures, EXPORT_FAILURES, "export_failures")


def url_without_credentials(url: str) -> str:
    """The URL without user info, query or fragment, so no key can ride along into a table."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _rows_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema, table: str) -> pa.Table:
    """A table of ``schema`` from row mappings; a key the schema lacks is a one-line error."""
    for row in rows:
        unknown = set(row) - set(schema.names)
        if unknown:
            raise ValueError(f"unknown {table} columns: {', '.join(sorted(unknown))}")
    columns = {}
    for field in schema:
        values = [row.get(field.name) for row in rows]
        if field.name in _TIMESTAMP_FIELDS:
            columns[field.name] = timestamp_column(values)
        else:
            columns[field.name] = pa.array(values, field.type)
    return pa.Table.from_pydict(columns, schema=schema)

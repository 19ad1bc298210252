"""One shape per table: the DDL in sql/ and the Arrow schemas in transform/ agree.

Columns, their order, their types (as DuckDB reads the Arrow type) and which may be null: a
change on one side only fails here, not in the middle of a merge. The export tables store the
workspace first, before the columns of their Arrow schema; their generated columns (text and
content, read from raw) are not stored, and not compared.
"""

import duckdb
import pyarrow as pa
import pytest

from load.warehouse import open_warehouse
from transform.check_schemas import JUDGE_CACHE, REPLAY_CHECKS, REPLAY_ROW_CHECKS
from transform.replay_schemas import REPLAY_EVENTS, REPLAY_RESULTS, REPLAY_RUNS
from transform.schemas import (
    CONTENT_CHUNKS,
    CONVERSATIONS,
    ENTRIES,
    EXPORT_FAILURES,
    EXPORT_RUNS,
    WAREHOUSE_ORIGIN,
)
from transform.workspaces import stored_schema

TABLES = {
    "conversations": stored_schema(CONVERSATIONS),
    "entries": stored_schema(ENTRIES),
    "messages": stored_schema(ENTRIES),
    "content_chunks": stored_schema(CONTENT_CHUNKS),
    "export_runs": stored_schema(EXPORT_RUNS),
    "export_failures": stored_schema(EXPORT_FAILURES),
    "replay_runs": REPLAY_RUNS,
    "replay_results": REPLAY_RESULTS,
    "replay_events": REPLAY_EVENTS,
    "replay_checks": REPLAY_CHECKS,
    "replay_row_checks": REPLAY_ROW_CHECKS,
    "judge_cache": JUDGE_CACHE,
    "warehouse_origin": stored_schema(WAREHOUSE_ORIGIN),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    return open_warehouse(tmp_path_factory.mktemp("shapes"))


def shape(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str, bool]]:
    """(column, DuckDB type, nullable) of a table or registered Arrow table, in order.

    JSON columns travel as JSON text in Arrow strings (DuckDB's JSON is a VARCHAR): both read
    as VARCHAR here.
    """
    rows = con.execute(f"DESCRIBE {relation}").fetchall()
    generated = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND is_generated = 'ALWAYS'",
            [relation],
        ).fetchall()
    }
    return [
        (name, _text(kind), null == "YES") for name, kind, null, *_ in rows if name not in generated
    ]


def _text(kind: str) -> str:
    """JSON as the VARCHAR it is stored as; every other type as it is."""
    return "VARCHAR" if kind == "JSON" else kind


@pytest.mark.parametrize("table", TABLES)
def test_the_ddl_and_the_arrow_schema_agree(
    warehouse: duckdb.DuckDBPyConnection, table: str
) -> None:
    schema = TABLES[table]
    warehouse.register("arrow_shape", schema.empty_table())
    try:
        arrow = shape(warehouse, "arrow_shape")
    finally:
        warehouse.unregister("arrow_shape")
    nullable = [field.nullable for field in schema]
    arrow = [(name, kind, null) for (name, kind, _), null in zip(arrow, nullable, strict=True)]
    assert shape(warehouse, table) == arrow


def test_every_table_has_its_arrow_schema(warehouse: duckdb.DuckDBPyConnection) -> None:
    tables = warehouse.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()
    assert {name for (name,) in tables} == set(TABLES)
    assert all(isinstance(schema, pa.Schema) for schema in TABLES.values())

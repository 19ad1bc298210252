"""A warehouse made by a previous schema upgrades in place when an export opens it.

The previous schema is the one before the workspace column (tests/fixtures holds its DDL), less
the columns added before that: its rows go to workspace 'default', its keys become (workspace,
...), its Parquet parts get the column, and the next run is still incremental.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emulator.server import RunningEmulator
from flows.export.flow import export_conversations
from transform.schemas import CONVERSATIONS, ENTRIES, EXPORT_RUNS

pytestmark = pytest.mark.usefixtures("prefect_harness")

FIXTURES = Path(__file__).parent / "fixtures"
EXPORT_TABLES = (
    "conversations",
    "entries",
    "messages",
    "content_chunks",
    "export_runs",
    "export_failures",
    "warehouse_origin",
)
# The columns added before the workspace, by table (each at the end, in this order).
ADDED = {
    "conversations": ("agent_version", "guardrails", "deleted_at", "deleted_in_run"),
    "entries": ("confirmation_status",),
    "messages": ("confirmation_status",),
    "export_runs": ("marked_deleted", "purged", "rate_limited", "pace_rps"),
}


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The stored columns of a table (not those generated from raw), in order."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [name for (name,) in rows]


def back_to_the_previous_schema(data_dir: Path) -> None:
    """Rebuild the warehouse and its Parquet parts as the schema before the workspace made them,
    less the columns added before it."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        for (view,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall():
            con.execute(f"DROP VIEW {view}")
        for table in EXPORT_TABLES:
            con.execute(f"ALTER TABLE {table} RENAME TO {table}_now")
        con.execute((FIXTURES / "schema_before_workspace.sql").read_text())
        for table in EXPORT_TABLES:
            con.execute(
                f"INSERT INTO {table} BY NAME SELECT * EXCLUDE (workspace) FROM {table}_now"
            )
            con.execute(f"DROP TABLE {table}_now")
        for table, added in ADDED.items():
            for column in added:
                con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for part in (data_dir / "parquet").glob("*/*.parquet"):
        # The parts had no workspace then, nor the columns added before it, but the text the
        # warehouse now reads from raw.
        table = pq.read_table(part).drop_columns(["workspace", *ADDED.get(part.parent.name, ())])
        if part.parent.name != "conversations":
            table = table.append_column("text", pa.nulls(table.num_rows, pa.string()))
        pq.write_table(table, part)


def test_an_export_upgrades_a_warehouse_of_the_previous_schema(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    emu = make_emulator(conversations=15, seed=31)

    def export():
        return asyncio.run(export_conversations(data_dir=str(data_dir), base_url=emu.url))

    export()
    back_to_the_previous_schema(data_dir)
    path = data_dir / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        assert "workspace" not in columns(con, "conversations")
        old_rows = con.execute("SELECT count(*) FROM conversations").fetchone()
    listed = emu.store.conversations_newest_first()
    agent = next(c for c in listed if c.get("agent_version") is not None)
    emu.store.touch(agent["id"])
    emu.store.delete(listed[-1]["id"])

    summary = export()

    assert summary.fetched == 1  # incremental: the stored updated_at survived the upgrade
    with duckdb.connect(str(path), read_only=True) as con:
        assert columns(con, "conversations") == ["workspace", *CONVERSATIONS.names]
        assert columns(con, "entries") == columns(con, "messages") == ["workspace", *ENTRIES.names]
        assert columns(con, "export_runs") == ["workspace", *EXPORT_RUNS.names]
        for table in EXPORT_TABLES:
            assert columns(con, table)[0] == "workspace"
            others = con.execute(f"SELECT count(*) FROM {table} WHERE workspace <> 'default'")
            assert others.fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM conversations").fetchone() == old_rows
        assert con.execute(
            "SELECT agent_version FROM conversations WHERE id = ?", [agent["id"]]
        ).fetchall() == [(str(agent["agent_version"]),)]
        assert con.execute(
            "SELECT id FROM conversations WHERE deleted_at IS NOT NULL"
        ).fetchall() == [(listed[-1]["id"],)]
        assert con.execute("SELECT count(*) FROM latest_conversations").fetchone() == (14,)
        runs = con.execute("SELECT marked_deleted FROM export_runs ORDER BY started_at")
        assert runs.fetchall() == [(None,), (1,)]
        keys = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = 'conversations' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
        assert keys == [(["workspace", "id"],)]
        parts = str(data_dir / "parquet" / "*" / "*.parquet")
        assert con.execute(
            "SELECT DISTINCT workspace FROM read_parquet(?, union_by_name = true)", [parts]
        ).fetchall() == [("default",)]
        entry_parts = str(data_dir / "parquet" / "entries" / "*.parquet")
        query = "SELECT * FROM read_parquet(?) LIMIT 0"
        assert con.sql(query, params=[entry_parts]).columns == ["workspace", *ENTRIES.names]
        texts = con.execute(
            "SELECT count(*) FROM entries WHERE type LIKE 'message.%' AND text IS NOT NULL"
        ).fetchone()
        assert texts[0] > 0

"""A warehouse made by the previous schema upgrades in place when an export opens it."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from emulator.server import RunningEmulator
from flows.export.flow import export_conversations
from transform.schemas import CONVERSATIONS, ENTRIES, EXPORT_RUNS

pytestmark = pytest.mark.usefixtures("prefect_harness")

# The columns added since the previous schema, by table (each at the end, in this order).
ADDED = {
    "conversations": ("agent_version", "guardrails", "deleted_at", "deleted_in_run"),
    "entries": ("confirmation_status",),
    "messages": ("confirmation_status",),
    "export_runs": ("marked_deleted", "purged", "rate_limited", "pace_rps"),
}


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def test_an_export_upgrades_a_warehouse_of_the_previous_schema(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    emu = make_emulator(conversations=15, seed=31)

    def export() -> None:
        asyncio.run(export_conversations(data_dir=str(data_dir), base_url=emu.url))

    export()
    path = data_dir / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        # Back to the previous schema: the views go (they read the new columns), then the columns.
        for (view,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall():
            con.execute(f"DROP VIEW {view}")
        for table, added in ADDED.items():
            for column in added:
                con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        old_rows = con.execute("SELECT count(*) FROM conversations").fetchone()
    listed = emu.store.conversations_newest_first()
    agent = next(c for c in listed if c.get("agent_version") is not None)
    emu.store.touch(agent["id"])
    emu.store.delete(listed[-1]["id"])

    export()

    with duckdb.connect(str(path), read_only=True) as con:
        assert columns(con, "conversations") == CONVERSATIONS.names
        assert columns(con, "entries") == columns(con, "messages") == ENTRIES.names
        assert columns(con, "export_runs") == EXPORT_RUNS.names
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

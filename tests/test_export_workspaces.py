"""Several workspaces in one data dir: the same conversation ids never overwrite each other.

Two emulators seeded alike serve the same ids, as two workspaces of one organisation may; each
is exported under its own --workspace into one data dir. Incremental state, deletions, purges
and the no-mixing check all stay within their workspace.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from emulator.server import RunningEmulator
from flows.export.flow import export_conversations
from flows.export.origin import MixedOrigin

pytestmark = pytest.mark.usefixtures("prefect_harness")

CONVERSATIONS = 12


def export(url: str, data_dir: Path, workspace: str, **options: object):
    """One export run of ``workspace`` from ``url`` into ``data_dir``; its summary."""
    return asyncio.run(
        export_conversations(data_dir=str(data_dir), base_url=url, workspace=workspace, **options)
    )


def per_workspace(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, object]:
    """{workspace: value} of a query returning (workspace, value) rows."""
    return dict(con.execute(sql).fetchall())


def test_two_workspaces_with_the_same_ids_keep_their_own_rows(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    first = make_emulator(conversations=CONVERSATIONS, seed=21)
    second = make_emulator(conversations=CONVERSATIONS, seed=21)
    ids = [c["id"] for c in first.store.conversations_newest_first()]
    assert ids == [c["id"] for c in second.store.conversations_newest_first()]

    assert export(first.url, data_dir, "team-a").fetched == CONVERSATIONS
    # Another workspace (another key) on another API is no mixing: no --allow-mixed needed.
    assert export(second.url, data_dir, "team-b").fetched == CONVERSATIONS

    path = data_dir / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        conversations = per_workspace(
            con, "SELECT workspace, count(*) FROM conversations GROUP BY 1"
        )
        entries = per_workspace(con, "SELECT workspace, count(*) FROM entries GROUP BY 1")
        usage = per_workspace(
            con, "SELECT workspace, sum(new_conversations) FROM daily_usage GROUP BY 1"
        )
    assert conversations == {"team-a": CONVERSATIONS, "team-b": CONVERSATIONS}
    assert entries["team-a"] == entries["team-b"] > 0
    assert usage == {"team-a": CONVERSATIONS, "team-b": CONVERSATIONS}

    # Deleted in team-a only: marked and purged there; team-b's conversation of that id stays.
    first.store.delete(ids[0])
    purged = export(first.url, data_dir, "team-a", purge_deleted=True)
    assert (purged.fetched, purged.marked_deleted, purged.purged) == (0, 1, 1)
    # Changed in team-b only: its next run fetches just that one.
    second.store.touch(ids[1])
    assert export(second.url, data_dir, "team-b").fetched == 1

    with duckdb.connect(str(path), read_only=True) as con:
        holding = con.execute(
            "SELECT workspace, deleted_at IS NULL FROM conversations WHERE id = ?", [ids[0]]
        ).fetchall()
        parts = str(data_dir / "parquet" / "entries" / "*.parquet")
        in_parts = con.execute(
            "SELECT DISTINCT workspace FROM read_parquet(?) WHERE conversation_id = ?",
            [parts, ids[0]],
        ).fetchall()
        runs = per_workspace(con, "SELECT workspace, count(*) FROM export_runs GROUP BY 1")
    assert holding == [("team-b", True)]
    assert in_parts == [("team-b",)]
    assert runs == {"team-a": 2, "team-b": 2}

    # The same workspace from another API is mixing, as before.
    with pytest.raises(MixedOrigin, match="holds exports from"):
        export(second.url, data_dir, "team-a")

"""Conversations the API no longer has, in the lake: the listing's ids, marks and the purge.

The same rules as load/deletions.py for the local warehouse (a complete listing's absent ids
are candidates; the flow confirms each with a get before marking), with the lake's tables:
a listing's ids are kept as Arrow string arrays (~40 bytes an id, not Python objects), and
marks and purges are Delta merges confined to the workspace's partition.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from load.lake.schemas import LAKE_KEYS
from load.lake.tables import Lake, committed, in_workspace, read_workspace

# Conversations first would leave child rows that no purge finds: children go first.
PURGE_ORDER = ("entries", "messages", "content_chunks", "conversations")


class LakeListedIds:
    """The ids one listing of ``workspace`` walked, and what the lake's conversations say of
    them; the interface of load.deletions.ListedIds, which flows.export.deletions calls."""

    def __init__(self, lake: Lake, workspace: str) -> None:
        self._lake = lake
        self._workspace = workspace
        self._blocks: list[pa.Array] = []

    def add(self, ids: list[str]) -> None:
        """Record a page's ids."""
        self._blocks.append(pa.array(ids, pa.large_string()))

    def _stored(self) -> pa.Table:
        """The workspace's conversations (id, deleted_at), each with whether it was listed."""
        stored = read_workspace(self._lake, "conversations", self._workspace, ["id", "deleted_at"])
        listed = pa.chunked_array(self._blocks, pa.large_string()).combine_chunks()
        return stored.append_column("listed", pc.is_in(stored["id"], value_set=listed))

    def absent(self) -> pa.Array:
        """The stored conversations not marked deleted that the listing did not walk."""
        stored = self._stored()
        wanted = pc.and_(pc.invert(stored["listed"]), pc.is_null(stored["deleted_at"]))
        return stored.filter(wanted).sort_by("id")["id"].combine_chunks()

    def restore_listed(self) -> int:
        """Un-mark the conversations marked deleted that were listed again; how many."""
        stored = self._stored()
        listed_again = stored.filter(pc.and_(stored["listed"], pc.is_valid(stored["deleted_at"])))
        if not listed_again.num_rows:
            return 0
        return self._update_marks(listed_again.select(["id"]), "NULL", "NULL")

    def mark_deleted(self, ids: pa.Array, run_id: str, deleted_at: datetime) -> int:
        """Mark ``ids`` (confirmed gone) as deleted by ``run_id``; how many were newly marked."""
        marks = pa.table(
            {
                "id": ids,
                "deleted_at": pa.array([deleted_at] * len(ids), pa.timestamp("us", tz="UTC")),
                "deleted_in_run": pa.array([run_id] * len(ids), pa.string()),
            }
        )
        return self._update_marks(
            marks, "source.deleted_at", "source.deleted_in_run", only="target.deleted_at IS NULL"
        )

    def _update_marks(
        self, source: pa.Table, deleted_at: str, deleted_in_run: str, only: str | None = None
    ) -> int:
        """Set the marks of the conversations in ``source`` (by id); how many rows changed."""

        def update(table: DeltaTable) -> int:
            metrics = (
                table.merge(
                    source,
                    predicate=f"{in_workspace(self._workspace)} AND target.id = source.id",
                    source_alias="source",
                    target_alias="target",
                )
                .when_matched_update(
                    {"deleted_at": deleted_at, "deleted_in_run": deleted_in_run}, predicate=only
                )
                .execute()
            )
            return int(metrics.get("num_target_rows_updated", 0))

        return committed(self._lake, "conversations", update, "marking deleted conversations in")

    def close(self) -> None:
        """Let the listing's ids go."""
        self._blocks = []


def purge_deleted(lake: Lake, workspace: str) -> int:
    """Remove every conversation of ``workspace`` marked deleted from the lake's tables
    (children first: a run killed in between leaves them marked, and the next purge finishes);
    returns how many conversations were purged."""
    stored = read_workspace(lake, "conversations", workspace, ["id", "deleted_at"])
    ids = stored.filter(pc.is_valid(stored["deleted_at"])).select(["id"])
    if not ids.num_rows:
        return 0
    for name in PURGE_ORDER:
        key = LAKE_KEYS[name][1]

        def delete(table: DeltaTable, key: str = key) -> None:
            table.merge(
                ids,
                predicate=f"{in_workspace(workspace)} AND target.{key} = source.id",
                source_alias="source",
                target_alias="target",
            ).when_matched_delete().execute()

        committed(lake, name, delete, "purging deleted conversations from")
    return ids.num_rows

"""Create the lake's Delta tables and merge export batches into them, one workspace at a time.

A batch's entries, messages and chunks are merged before its conversations: a conversation's
stored ``updated_at`` (the incremental state) moves only after its rows are replaced, so a
writer killed between two commits leaves that conversation due for re-fetching, never stale.
Each table's merge is one Delta commit (atomic on its own); delta-rs commits on S3 with
conditional puts (If-None-Match), so no lock service is needed; a merge whose commit lost a
race to another writer is run again on the new version.
Credentials come from the usual AWS_* (GOOGLE_*, AZURE_*) environment: never passed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from load.lake.reasons import LakeError, short_reason
from load.lake.schemas import LAKE_KEYS, LAKE_SCHEMAS, WORKSPACE
from transform.updated_at_index import UpdatedAtIndex

# Children first, conversations last: see the module docstring.
MERGE_ORDER = ("entries", "messages", "content_chunks", "conversations")
# delta-rs refuses a merge's commit when another writer added files to the table since the
# merge read it, even in another workspace's partition ("a concurrent transaction added new
# data"); the merge is then run again on the new version, up to this many times.
MERGE_ATTEMPTS = 20
Result = TypeVar("Result")


@dataclass(frozen=True)
class Lake:
    """The URL of a lake (local path, s3://, gs://, az://) and its non-secret storage options
    (an endpoint, allow-http for a local S3); credentials stay in the environment."""

    url: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def table_url(self, name: str) -> str:
        """Where table ``name`` lives: a folder under the lake's URL."""
        return f"{self.url.rstrip('/')}/{name}"

    def table(self, name: str) -> DeltaTable:
        """The latest committed version of table ``name``."""
        try:
            return DeltaTable(self.table_url(name), storage_options=dict(self.storage_options))
        except (DeltaError, OSError) as error:
            raise LakeError(
                f"cannot open lake table {self.table_url(name)}: {short_reason(error)}"
            ) from None


def open_lake(url: str, storage_options: Mapping[str, str] | None = None) -> Lake:
    """The lake at ``url``, with each export table created (empty, partitioned by workspace)
    if it is not there yet; an existing table is left as it is."""
    lake = Lake(url, dict(storage_options or {}))
    for name, schema in LAKE_SCHEMAS.items():
        try:
            _create(lake, name, schema)
        except (DeltaError, OSError):
            # Another writer's first export may have created it meanwhile: then this second
            # try finds it and leaves it; a missing bucket fails the same way again.
            try:
                _create(lake, name, schema)
            except (DeltaError, OSError) as error:
                raise LakeError(
                    f"cannot create lake table {lake.table_url(name)}: {short_reason(error)}"
                ) from None
    return lake


def _create(lake: Lake, name: str, schema: pa.Schema) -> None:
    """Create table ``name`` unless it exists."""
    DeltaTable.create(
        lake.table_url(name),
        schema,
        mode="ignore",
        partition_by=[WORKSPACE],
        name=name,
        storage_options=dict(lake.storage_options),
    )


def upsert_batch(lake: Lake, workspace: str, tables: Mapping[str, pa.Table]) -> None:
    """Merge one export batch (the four tables of ``flatten_bodies``) into ``workspace``.

    Conversations are upserted by (workspace, id), keeping the stored first_export_run; every
    conversation of the batch counts as fully re-fetched, so its stored entries, messages and
    chunks are replaced by the batch's (possibly none).
    """
    conversations = tables["conversations"]
    if not conversations.num_rows:
        return
    ids = conversations.column("id").combine_chunks()
    in_batch = (
        f"{in_workspace(workspace)} AND target.conversation_id IN "
        f"({', '.join(literal(i) for i in ids.to_pylist())})"
    )
    for name in MERGE_ORDER[:-1]:
        outside = pc.invert(pc.is_in(tables[name]["conversation_id"], ids))
        if pc.any(outside).as_py():
            raise ValueError(f"{name} rows are in the batch without their conversation")
    for name in MERGE_ORDER:
        _merge(lake, name, with_workspace(tables[name], name, workspace), workspace, in_batch)


def _merge(lake: Lake, name: str, rows: pa.Table, workspace: str, in_batch: str) -> None:
    """Merge ``rows`` into table ``name`` in one commit."""

    def merge(table: DeltaTable) -> None:
        merger = table.merge(
            rows,
            predicate=_key_predicate(name, workspace),
            source_alias="source",
            target_alias="target",
        )
        if name == "conversations":
            merger = merger.when_matched_update_all(except_cols=["first_export_run"])
        else:
            merger = merger.when_matched_update_all().when_not_matched_by_source_delete(in_batch)
        merger.when_not_matched_insert_all().execute()

    committed(lake, name, merge, f"merging {rows.num_rows} rows into")


def committed(lake: Lake, name: str, change: Callable[[DeltaTable], Result], doing: str) -> Result:
    """Run ``change`` (one commit) on the latest version of table ``name``, again on the new
    version while other writers win the race; LakeError when it cannot commit."""
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        try:
            return change(lake.table(name))
        except CommitFailedError as error:
            if attempt == MERGE_ATTEMPTS:
                raise LakeError(
                    f"{doing} lake table {lake.table_url(name)} lost to other writers "
                    f"{attempt} times: {short_reason(error)}"
                ) from None
        except (DeltaError, OSError) as error:
            raise LakeError(
                f"{doing} lake table {lake.table_url(name)} failed: {short_reason(error)}"
            ) from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def read_workspace(lake: Lake, name: str, workspace: str, columns: list[str]) -> pa.Table:
    """``columns`` of the rows of ``workspace`` in table ``name``, as of its latest commit."""
    dataset = lake.table(name).to_pyarrow_dataset(as_large_types=True)
    try:
        return dataset.to_table(columns=columns, filter=pc.field(WORKSPACE) == workspace)
    except OSError as error:
        raise LakeError(
            f"cannot read lake table {lake.table_url(name)}: {short_reason(error)}"
        ) from None


def read_updated_at(lake: Lake, workspace: str) -> UpdatedAtIndex:
    """The stored updated_at of every conversation of ``workspace`` (the incremental state),
    as of the latest commit."""
    return UpdatedAtIndex(read_workspace(lake, "conversations", workspace, ["id", "updated_at"]))


def with_workspace(table: pa.Table, name: str, workspace: str) -> pa.Table:
    """The batch's rows of table ``name`` with the workspace column, in the lake's schema."""
    column = pa.repeat(pa.scalar(workspace, pa.string()), table.num_rows)
    return table.add_column(0, WORKSPACE, column).cast(LAKE_SCHEMAS[name])


def _key_predicate(name: str, workspace: str) -> str:
    """Rows match on the table's key; the workspace literal confines the merge to its
    partition, so it neither reads nor conflicts with another workspace's files."""
    keys = [f"{_target(k)} = source.{_quoted(k)}" for k in LAKE_KEYS[name]]
    return " AND ".join([in_workspace(workspace), *keys])


def in_workspace(workspace: str, alias: str = "target") -> str:
    """The predicate that confines a change to ``workspace``'s partition (its rows are
    ``alias``'s in a merge; ``alias=""`` in an update or delete)."""
    column = f"{alias}.{_quoted(WORKSPACE)}" if alias else _quoted(WORKSPACE)
    return f"{column} = {literal(workspace)}"


def _target(column: str) -> str:
    return f"target.{_quoted(column)}"


def _quoted(column: str) -> str:
    return f'"{column}"'


def literal(value: str) -> str:
    """A SQL string literal: delta-rs predicates take text only, never bound parameters."""
    return "'" + value.replace("'", "''") + "'"

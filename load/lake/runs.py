"""The lake's export_runs and export_failures: what each run of each workspace did.

A run's row is upserted by (workspace, run_id) as it starts and as it ends; failures are only
appended (an append never conflicts with another writer's commit).
"""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from load.lake.reasons import LakeError, short_reason
from load.lake.tables import Lake, committed, in_workspace, literal, with_workspace


def record_run(lake: Lake, workspace: str, run: pa.Table) -> None:
    """Insert or replace the run's export_runs row (one row of transform.schemas.EXPORT_RUNS)."""
    rows = with_workspace(run, "export_runs", workspace)

    def upsert(table: DeltaTable) -> None:
        table.merge(
            rows,
            predicate=f"{in_workspace(workspace)} AND target.run_id = source.run_id",
            source_alias="source",
            target_alias="target",
        ).when_matched_update_all().when_not_matched_insert_all().execute()

    committed(lake, "export_runs", upsert, "recording the run in")


def record_failures(lake: Lake, workspace: str, failures: pa.Table) -> None:
    """Append export_failures rows (transform.schemas.EXPORT_FAILURES) to ``workspace``."""
    if not failures.num_rows:
        return
    url = lake.table_url("export_failures")
    try:
        write_deltalake(
            url,
            with_workspace(failures, "export_failures", workspace),
            mode="append",
            storage_options=dict(lake.storage_options),
        )
    except (DeltaError, OSError) as error:
        raise LakeError(f"appending to lake table {url} failed: {short_reason(error)}") from None


def mark_dead_runs_interrupted(lake: Lake, workspace: str, current_run: str) -> None:
    """Runs of ``workspace`` still recorded as running died without ending (their lease has
    gone to this run): record them as interrupted."""
    predicate = (
        f"{in_workspace(workspace, alias='')} AND status = 'running' "
        f"AND run_id <> {literal(current_run)}"
    )
    committed(
        lake,
        "export_runs",
        lambda table: table.update(predicate=predicate, updates={"status": "'interrupted'"}),
        "marking dead runs in",
    )

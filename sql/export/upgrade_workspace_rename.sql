-- A warehouse made before the workspace column: set its export tables aside, to be rebuilt by
-- schema.sql with the workspace first in every key (DuckDB cannot change a primary key).
-- Warehouses older still have no warehouse_origin: an empty one of the old shape stands in.
CREATE TABLE IF NOT EXISTS warehouse_origin (
    origin VARCHAR, base_url VARCHAR, emulator BOOLEAN, first_run VARCHAR, recorded_at TIMESTAMPTZ
);
ALTER TABLE conversations RENAME TO conversations_before_workspace;
ALTER TABLE entries RENAME TO entries_before_workspace;
ALTER TABLE messages RENAME TO messages_before_workspace;
ALTER TABLE content_chunks RENAME TO content_chunks_before_workspace;
ALTER TABLE export_runs RENAME TO export_runs_before_workspace;
ALTER TABLE export_failures RENAME TO export_failures_before_workspace;
ALTER TABLE warehouse_origin RENAME TO warehouse_origin_before_workspace;

-- A warehouse made before the workspace column: set its export tables aside, to be rebuilt by
-- schema.sql with the workspace first in every key (DuckDB cannot change a primary key).
-- A table a still older warehouse lacks gets an empty stand-in, so that every statement below
-- and in upgrade_workspace_copy.sql finds the table and the columns it names.
CREATE TABLE IF NOT EXISTS conversations (id VARCHAR);
CREATE TABLE IF NOT EXISTS entries (text VARCHAR, content JSON);
CREATE TABLE IF NOT EXISTS messages (text VARCHAR, content JSON);
CREATE TABLE IF NOT EXISTS content_chunks (text VARCHAR);
CREATE TABLE IF NOT EXISTS export_runs (run_id VARCHAR);
CREATE TABLE IF NOT EXISTS export_failures (run_id VARCHAR);
CREATE TABLE IF NOT EXISTS warehouse_origin (origin VARCHAR);
ALTER TABLE conversations RENAME TO conversations_before_workspace;
ALTER TABLE entries RENAME TO entries_before_workspace;
ALTER TABLE messages RENAME TO messages_before_workspace;
ALTER TABLE content_chunks RENAME TO content_chunks_before_workspace;
ALTER TABLE export_runs RENAME TO export_runs_before_workspace;
ALTER TABLE export_failures RENAME TO export_failures_before_workspace;
ALTER TABLE warehouse_origin RENAME TO warehouse_origin_before_workspace;

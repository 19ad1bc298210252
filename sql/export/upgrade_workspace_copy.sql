-- Fill the rebuilt export tables from those set aside, every row in workspace 'default' (the
-- workspace of a run not told --workspace), and drop the old ones. By name: a column the old
-- table lacks (added since) is null; the text and content it stored are now read from raw.
INSERT INTO conversations BY NAME
SELECT 'default' AS workspace, * FROM conversations_before_workspace;
INSERT INTO entries BY NAME
SELECT 'default' AS workspace, * EXCLUDE (text, content) FROM entries_before_workspace;
INSERT INTO messages BY NAME
SELECT 'default' AS workspace, * EXCLUDE (text, content) FROM messages_before_workspace;
INSERT INTO content_chunks BY NAME
SELECT 'default' AS workspace, * EXCLUDE (text) FROM content_chunks_before_workspace;
INSERT INTO export_runs BY NAME SELECT 'default' AS workspace, * FROM export_runs_before_workspace;
INSERT INTO export_failures BY NAME
SELECT 'default' AS workspace, * FROM export_failures_before_workspace;
INSERT INTO warehouse_origin BY NAME
SELECT 'default' AS workspace, * FROM warehouse_origin_before_workspace;
DROP TABLE conversations_before_workspace;
DROP TABLE entries_before_workspace;
DROP TABLE messages_before_workspace;
DROP TABLE content_chunks_before_workspace;
DROP TABLE export_runs_before_workspace;
DROP TABLE export_failures_before_workspace;
DROP TABLE warehouse_origin_before_workspace;

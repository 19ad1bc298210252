-- Record a run's failures (batch_export_failures): one row per (workspace, run_id,
-- conversation_id, endpoint), so recording the same failure again replaces it instead of adding
-- a duplicate.
DELETE FROM export_failures AS f
USING batch_export_failures AS b
WHERE f.workspace = b.workspace
  AND f.run_id = b.run_id
  AND f.conversation_id = b.conversation_id
  AND f.endpoint = b.endpoint;
INSERT INTO export_failures BY NAME SELECT * FROM batch_export_failures;

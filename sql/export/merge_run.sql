-- Insert or replace one export run's row (batch_export_run), keyed by (workspace, run_id): a
-- run records itself when it starts and again, with its final counters, when it ends.
INSERT OR REPLACE INTO export_runs BY NAME SELECT * FROM batch_export_run;

-- The thresholds and descriptions the given runs were graded with.
SELECT run_id, row_id, threshold, description
FROM replay_row_checks
WHERE list_contains($run_ids, run_id);

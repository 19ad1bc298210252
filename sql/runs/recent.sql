-- The latest export and replay runs, newest first: when each ran and how it ended
-- (running, completed, failed or interrupted), with what it did.
SELECT 'export' AS kind, run_id, started_at, finished_at, status, fetched AS done, failed
FROM export_runs
UNION ALL
SELECT 'replay' AS kind, run_id, started_at, finished_at, status, ok AS done, errors AS failed
FROM replay_runs
ORDER BY started_at DESC NULLS LAST
LIMIT $limit;

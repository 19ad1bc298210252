-- Replay runs still marked running when a writer opens the warehouse died without recording
-- their end (killed): the writer holds DuckDB's only write lock, so no process is running them.
UPDATE replay_runs
SET status = 'interrupted'
WHERE status = 'running'
RETURNING *;

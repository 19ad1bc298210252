-- Runs still marked running when a writer opens the warehouse died without recording their end
-- (killed): the writer holds DuckDB's only write lock, so no other process can be running them.
UPDATE export_runs SET status = 'interrupted' WHERE status = 'running';

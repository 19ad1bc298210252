-- The stored verdicts of the given runs.
SELECT * FROM replay_checks WHERE list_contains($run_ids, run_id);

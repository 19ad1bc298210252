-- Which of the given run ids have a replay_runs row.
SELECT run_id FROM replay_runs WHERE list_contains($run_ids, run_id);

-- The checks a run was last graded with (or sent with), a row each.
SELECT row_id, cells FROM replay_row_checks WHERE run_id = $run_id ORDER BY row_id;

-- Every stored result of a run, to rewrite its Parquet parts as one compact part.
SELECT * FROM replay_results WHERE run_id = $run_id ORDER BY variant, row_number, repeat_index;

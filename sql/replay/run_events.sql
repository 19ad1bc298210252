-- Every stored event of a run, to rewrite its Parquet parts as one compact part.
SELECT * FROM replay_events WHERE run_id = $run_id ORDER BY variant, row_id, repeat_index, seq;

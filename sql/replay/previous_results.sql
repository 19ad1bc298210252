-- What an earlier attempt of a run already stored, so a rerun skips the rows that are ok.
SELECT
    row_id,
    repeat_index,
    status,
    conversation_id,
    variant
FROM replay_results
WHERE run_id = $run_id;

-- Every result of a run, numbers only: the charts cover all of them, not only the table's rows.
SELECT
    row_id,
    repeat_index,
    status,
    error,
    prompt_tokens,
    completion_tokens,
    ttft_ms,
    latency_ms
FROM replay_results
WHERE run_id = $run_id
ORDER BY row_number, repeat_index;

-- The results table of the report: prompt and output side by side, in CSV order, at most $limit.
SELECT
    row_id,
    repeat_index,
    mode,
    status,
    error,
    recovered,
    attempts,
    prompt,
    output_text,
    prompt_tokens,
    completion_tokens,
    ttft_ms,
    latency_ms,
    model,
    agent_id,
    conversation_id
FROM replay_results
WHERE run_id = $run_id
ORDER BY row_number, repeat_index
LIMIT $limit;

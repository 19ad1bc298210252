-- What grading reads of a run's results: the outputs and the measures checks compare.
SELECT
    run_id,
    row_id,
    repeat_index,
    variant,
    status,
    error,
    output_text,
    latency_ms,
    ttft_ms,
    prompt_tokens,
    completion_tokens,
    model
FROM replay_results
WHERE list_contains($run_ids, run_id);

-- The results table of the report: prompt and output side by side, in CSV order (variants of a
-- row together), with each result's verdict and whether its row is flaky, at most $limit.
WITH flaky AS (
    SELECT
        row_id,
        variant,
        bool_or(pass) AND bool_or(NOT pass) AS flaky
    FROM replay_verdicts
    WHERE run_id = $run_id
    GROUP BY ALL
)
SELECT
    results.row_id,
    results.repeat_index,
    results.mode,
    results.status,
    results.error,
    results.recovered,
    results.attempts,
    results.prompt,
    results.output_text,
    results.prompt_tokens,
    results.completion_tokens,
    results.ttft_ms,
    results.latency_ms,
    results.model,
    results.agent_id,
    results.conversation_id,
    results.variant,
    results.checks,
    results.passed,
    results.pass,
    coalesce(flaky.flaky, FALSE) AS flaky
FROM replay_graded_results AS results
LEFT JOIN flaky
    ON flaky.row_id = results.row_id AND flaky.variant = results.variant
WHERE results.run_id = $run_id
ORDER BY results.row_number, results.variant, results.repeat_index
LIMIT $limit;

-- A matrix run's variants side by side: results, errors, pass rate, tokens and latency of each.
SELECT
    results.variant,
    count(*) AS results,
    count(*) FILTER (WHERE results.status = 'ok') AS ok,
    count(*) FILTER (WHERE results.pass) AS passed,
    count(*) FILTER (WHERE NOT results.pass) AS failed,
    sum(results.prompt_tokens) AS prompt_tokens,
    sum(results.completion_tokens) AS completion_tokens,
    quantile_cont(results.latency_ms, 0.5) FILTER (WHERE results.status = 'ok') AS latency_p50_ms,
    quantile_cont(results.ttft_ms, 0.5) FILTER (WHERE results.status = 'ok') AS ttft_p50_ms
FROM replay_graded_results AS results
WHERE results.run_id = $run_id
GROUP BY results.variant
ORDER BY results.variant;

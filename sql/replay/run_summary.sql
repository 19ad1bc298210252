-- The closing numbers of a run: counts, tokens, and latency / time-to-first-token percentiles.
SELECT
    count(*) FILTER (WHERE status = 'ok') AS ok,
    count(*) FILTER (WHERE status <> 'ok') AS errors,
    count(*) FILTER (WHERE recovered) AS recovered,
    coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
    coalesce(sum(completion_tokens), 0) AS completion_tokens,
    coalesce(sum(total_tokens), 0) AS total_tokens,
    quantile_cont(latency_ms, 0.5) FILTER (WHERE status = 'ok') AS latency_p50_ms,
    quantile_cont(latency_ms, 0.95) FILTER (WHERE status = 'ok') AS latency_p95_ms,
    quantile_cont(ttft_ms, 0.5) FILTER (WHERE status = 'ok') AS ttft_p50_ms,
    quantile_cont(ttft_ms, 0.95) FILTER (WHERE status = 'ok') AS ttft_p95_ms
FROM replay_results
WHERE run_id = $run_id;

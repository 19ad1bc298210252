-- The cached verdicts among the given keys.
SELECT cache_key, pass, score, reason
FROM judge_cache
WHERE list_contains($keys, cache_key);

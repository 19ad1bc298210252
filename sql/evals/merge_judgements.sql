-- Add new judge verdicts to the cache; a key already there keeps its first verdict.
INSERT INTO judge_cache BY NAME
SELECT * FROM new_judgements
WHERE cache_key NOT IN (SELECT cache_key FROM judge_cache);

-- The Parquet parts (files $files) holding rows of workspace $workspace's purged conversations
-- (purged_ids) in the column that $key_pattern matches (a regular expression, anchored: '^id$').
SELECT DISTINCT filename
FROM read_parquet($files, filename = true)
WHERE workspace = $workspace AND COLUMNS($key_pattern) IN (SELECT id FROM purged_ids)
ORDER BY filename;

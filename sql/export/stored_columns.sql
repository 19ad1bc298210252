-- The stored columns of table $table, in order: those a merge inserts (generated ones aside).
SELECT column_name
FROM information_schema.columns
WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = $table
  AND is_generated = 'NEVER'
ORDER BY ordinal_position;

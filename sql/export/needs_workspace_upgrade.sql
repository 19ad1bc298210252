-- Whether this warehouse's conversations table predates the workspace column.
SELECT count(*) = 1 AND count(*) FILTER (WHERE column_name = 'workspace') = 0
FROM duckdb_columns()
WHERE database_name = current_database() AND schema_name = 'main'
  AND table_name = 'conversations' AND column_name IN ('id', 'workspace');

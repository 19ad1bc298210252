-- Whether this warehouse has an export table made before the workspace column.
SELECT count(*) > 0
FROM duckdb_tables() AS t
WHERE t.database_name = current_database() AND t.schema_name = 'main'
  AND t.table_name IN ('conversations', 'entries', 'messages', 'content_chunks', 'export_runs',
                       'export_failures', 'warehouse_origin')
  AND NOT EXISTS (
      SELECT 1
      FROM duckdb_columns() AS c
      WHERE c.database_name = t.database_name AND c.schema_name = t.schema_name
        AND c.table_name = t.table_name AND c.column_name = 'workspace'
  );

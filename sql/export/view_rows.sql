-- The first rows of one table or view, named by a parameter (the demo shows a few).
SELECT * FROM query_table($view) LIMIT $limit;

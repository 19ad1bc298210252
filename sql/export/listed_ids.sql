-- The ids one export's listing walked, in a temp table of the listing's own connection: a
-- 1,000,000-conversation account's ids stay out of Python's heap (DuckDB spills them to disk).
CREATE OR REPLACE TEMP TABLE listed_ids (id VARCHAR NOT NULL);

-- The conversations marked deleted: what --purge-deleted removes.
SELECT id FROM conversations WHERE deleted_at IS NOT NULL ORDER BY id;

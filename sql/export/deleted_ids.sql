-- The conversations of workspace $workspace marked deleted: what --purge-deleted removes.
SELECT workspace, id
FROM conversations
WHERE workspace = $workspace AND deleted_at IS NOT NULL
ORDER BY id;

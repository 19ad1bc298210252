-- Un-mark the conversations of workspace $workspace marked deleted whose ids the listing walked
-- again (listed_ids).
UPDATE conversations
SET deleted_at = NULL, deleted_in_run = NULL
WHERE workspace = $workspace AND deleted_at IS NOT NULL AND id IN (SELECT id FROM listed_ids);

-- Mark the conversations of workspace $workspace the API answered 404 for (confirmed_deleted)
-- as deleted by run $run_id at $deleted_at; one already marked keeps its first mark.
UPDATE conversations
SET deleted_at = $deleted_at, deleted_in_run = $run_id
WHERE workspace = $workspace AND deleted_at IS NULL AND id IN (SELECT id FROM confirmed_deleted);

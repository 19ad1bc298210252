-- Each stored conversation's updated_at in workspace $workspace: an incremental run re-fetches a
-- listed conversation only when it is missing here or its listed updated_at differs.
SELECT id, updated_at FROM conversations WHERE workspace = $workspace;

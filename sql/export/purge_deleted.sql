-- Remove every row of the purged conversations (purged_ids: workspace and id) from the export
-- tables; another workspace's conversation of the same id stays.
DELETE FROM entries WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM purged_ids);
DELETE FROM messages WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM purged_ids);
DELETE FROM content_chunks
WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM purged_ids);
DELETE FROM conversations WHERE (workspace, id) IN (SELECT (workspace, id) FROM purged_ids);

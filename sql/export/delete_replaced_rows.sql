-- Remove the stored entries, messages and content chunks of every conversation in the batch
-- (batch_conversations), in the same transaction that inserts the batch's own rows
-- (insert_<table>.sql): a re-fetched conversation leaves no stale rows and no duplicates. Rows
-- are keyed by workspace: another workspace's conversation of the same id is left alone.
DELETE FROM entries
WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM batch_conversations);
DELETE FROM messages
WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM batch_conversations);
DELETE FROM content_chunks
WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM batch_conversations);

-- Replace the entries, messages and content chunks of every conversation in the batch
-- (batch_conversations) with the batch's rows (batch_entries, batch_messages, batch_chunks):
-- a re-fetched conversation leaves no stale rows and no duplicates. Rows are keyed by
-- workspace: another workspace's conversation of the same id is left alone.
DELETE FROM entries
WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM batch_conversations);
DELETE FROM messages
WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM batch_conversations);
DELETE FROM content_chunks
WHERE (workspace, conversation_id) IN (SELECT (workspace, id) FROM batch_conversations);
INSERT INTO entries BY NAME SELECT * FROM batch_entries;
INSERT INTO messages BY NAME SELECT * FROM batch_messages;
INSERT INTO content_chunks BY NAME SELECT * FROM batch_chunks;

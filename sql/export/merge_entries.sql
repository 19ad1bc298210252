-- Replace the entries, messages and content chunks of every conversation in the batch
-- (batch_conversations) with the batch's rows (batch_entries, batch_messages, batch_chunks):
-- a re-fetched conversation leaves no stale rows and no duplicates.
DELETE FROM entries WHERE conversation_id IN (SELECT id FROM batch_conversations);
DELETE FROM messages WHERE conversation_id IN (SELECT id FROM batch_conversations);
DELETE FROM content_chunks WHERE conversation_id IN (SELECT id FROM batch_conversations);
INSERT INTO entries BY NAME SELECT * FROM batch_entries;
INSERT INTO messages BY NAME SELECT * FROM batch_messages;
INSERT INTO content_chunks BY NAME SELECT * FROM batch_chunks;

-- Remove every row of the purged conversations (purged_ids) from the export tables.
DELETE FROM entries WHERE conversation_id IN (SELECT id FROM purged_ids);
DELETE FROM messages WHERE conversation_id IN (SELECT id FROM purged_ids);
DELETE FROM content_chunks WHERE conversation_id IN (SELECT id FROM purged_ids);
DELETE FROM conversations WHERE id IN (SELECT id FROM purged_ids);

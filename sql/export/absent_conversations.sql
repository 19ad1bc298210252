-- Stored conversations of workspace $workspace not yet marked deleted whose ids a complete
-- listing did not walk (listed_ids): each is checked with a get before it is marked.
SELECT c.id
FROM conversations AS c
ANTI JOIN listed_ids AS l ON l.id = c.id
WHERE c.workspace = $workspace AND c.deleted_at IS NULL
ORDER BY c.id;

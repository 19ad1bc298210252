-- Upsert the batch's conversations (registered as batch_conversations, each row with its
-- workspace) by (workspace, id). A conversation already in the warehouse keeps its
-- first_export_run; every other column takes the batch's value (a fetched conversation exists:
-- deleted_at and deleted_in_run go back to null).
INSERT INTO conversations BY NAME
SELECT * FROM batch_conversations
QUALIFY row_number() OVER (PARTITION BY workspace, id ORDER BY updated_at DESC NULLS LAST) = 1
ON CONFLICT (workspace, id) DO UPDATE SET
    kind = excluded.kind,
    model = excluded.model,
    agent_id = excluded.agent_id,
    name = excluded.name,
    description = excluded.description,
    instructions = excluded.instructions,
    tools = excluded.tools,
    completion_args = excluded.completion_args,
    metadata = excluded.metadata,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    raw = excluded.raw,
    last_export_run = excluded.last_export_run,
    agent_version = excluded.agent_version,
    guardrails = excluded.guardrails,
    deleted_at = excluded.deleted_at,
    deleted_in_run = excluded.deleted_in_run;

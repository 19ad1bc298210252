-- Analytics views over the export tables, one everyday question each. Applied on every open.
-- Days are UTC. The API's history carries no token usage, so sizes are counted in entries and
-- characters, and the columns say so. They leave out the conversations marked deleted (an
-- export found them gone from the API): they read live_conversations and live_entries. Every
-- view shows all workspaces, the workspace first (a conversation's key is (workspace, id)).

-- The conversations still in the API as of the last complete listing (deleted_at is null).
CREATE OR REPLACE VIEW live_conversations AS
SELECT * FROM conversations WHERE deleted_at IS NULL;

-- The entries of live conversations.
CREATE OR REPLACE VIEW live_entries AS
SELECT e.*
FROM entries AS e
ANTI JOIN (SELECT workspace, id FROM conversations WHERE deleted_at IS NOT NULL) AS d
    ON d.workspace = e.workspace AND d.id = e.conversation_id;

-- Per UTC day, model and agent: how many conversations were active (had an entry that day), how
-- many were started, how many entries and messages they added, and how many characters the
-- assistant wrote (message.output text).
CREATE OR REPLACE VIEW daily_usage AS
WITH activity AS (
    SELECT e.workspace, CAST(timezone('UTC', e.created_at) AS DATE) AS day,
           c.kind, c.model, c.agent_id, e.conversation_id, e.type, e.text, false AS is_start
    FROM live_entries AS e
    JOIN live_conversations AS c ON c.workspace = e.workspace AND c.id = e.conversation_id
    UNION ALL
    SELECT workspace, CAST(timezone('UTC', created_at) AS DATE), kind, model, agent_id, id,
           NULL, NULL, true
    FROM live_conversations
)
SELECT workspace, day, kind, model, agent_id,
       count(DISTINCT conversation_id) FILTER (WHERE NOT is_start) AS conversations,
       count(*) FILTER (WHERE is_start) AS new_conversations,
       count(*) FILTER (WHERE NOT is_start) AS entries,
       count(*) FILTER (WHERE type IN ('message.input', 'message.output')) AS messages,
       coalesce(sum(length(text)) FILTER (WHERE type = 'message.output'), 0) AS output_chars
FROM activity
GROUP BY ALL
ORDER BY workspace, day, kind, model, agent_id;

-- Which functions and built-in tools are used, how often and in how many conversations.
-- kind is 'function' (function.call entries) or 'builtin_tool' (tool.execution entries).
CREATE OR REPLACE VIEW tool_usage AS
SELECT workspace,
       name AS tool,
       CASE type WHEN 'function.call' THEN 'function' ELSE 'builtin_tool' END AS kind,
       count(*) AS calls,
       count(DISTINCT conversation_id) AS conversations,
       min(created_at) AS first_call_at,
       max(created_at) AS last_call_at
FROM live_entries
WHERE type IN ('function.call', 'tool.execution')
GROUP BY ALL
ORDER BY workspace, calls DESC, tool, kind;

-- Which agent hands off to which, how often and in how many conversations.
CREATE OR REPLACE VIEW handoffs AS
SELECT workspace,
       previous_agent_id AS from_agent_id,
       previous_agent_name AS from_agent_name,
       next_agent_id AS to_agent_id,
       next_agent_name AS to_agent_name,
       count(*) AS handoffs,
       count(DISTINCT conversation_id) AS conversations
FROM live_entries
WHERE type = 'agent.handoff'
GROUP BY ALL
ORDER BY workspace, handoffs DESC, from_agent_id, to_agent_id;

-- How long conversations are: conversations per bucket of history length (entries), in
-- power-of-two buckets 0, 1, 2-3, 4-7, 8-15, ...; min_entries orders the buckets.
CREATE OR REPLACE VIEW conversation_lengths AS
WITH lengths AS (
    SELECT c.workspace, c.id, count(e.id) AS entries
    FROM live_conversations AS c
    LEFT JOIN live_entries AS e ON e.workspace = c.workspace AND e.conversation_id = c.id
    GROUP BY c.workspace, c.id
), buckets AS (
    SELECT workspace,
           CASE WHEN entries = 0 THEN 0
                ELSE CAST(pow(2, floor(log2(entries) + 1e-9)) AS BIGINT) END AS min_entries
    FROM lengths
)
SELECT workspace,
       CASE WHEN min_entries <= 1 THEN CAST(min_entries AS VARCHAR)
            ELSE min_entries || '-' || (2 * min_entries - 1) END AS bucket,
       min_entries,
       count(*) AS conversations
FROM buckets
GROUP BY workspace, min_entries
ORDER BY workspace, min_entries;

-- The most recently updated conversations first, with their length and the text of their
-- first user message (add LIMIT n).
CREATE OR REPLACE VIEW latest_conversations AS
WITH per_conversation AS (
    SELECT workspace, conversation_id,
           count(*) AS entries,
           arg_min(text, position)
               FILTER (WHERE type = 'message.input' AND role = 'user') AS first_user_message
    FROM live_entries
    GROUP BY workspace, conversation_id
)
SELECT c.workspace, c.id, c.kind, c.model, c.agent_id, c.name, c.created_at, c.updated_at,
       coalesce(p.entries, 0) AS entries,
       p.first_user_message
FROM live_conversations AS c
LEFT JOIN per_conversation AS p ON p.workspace = c.workspace AND p.conversation_id = c.id
ORDER BY c.updated_at DESC, c.id, c.workspace;

-- Per model and agent, over all time: conversations, their entries by type, assistant output
-- characters, average length and the span of activity. agent_name is the latest name handoff
-- entries gave the agent (conversations themselves carry only its id).
CREATE OR REPLACE VIEW model_agent_summary AS
WITH agent_names AS (
    SELECT workspace, agent_id, arg_max(agent_name, created_at) AS agent_name
    FROM (
        SELECT workspace, previous_agent_id AS agent_id, previous_agent_name AS agent_name,
               created_at
        FROM live_entries WHERE type = 'agent.handoff'
        UNION ALL
        SELECT workspace, next_agent_id, next_agent_name, created_at
        FROM live_entries WHERE type = 'agent.handoff'
    )
    GROUP BY workspace, agent_id
), per_conversation AS (
    SELECT workspace, conversation_id,
           count(*) AS entries,
           count(*) FILTER (WHERE type IN ('message.input', 'message.output')) AS messages,
           count(*) FILTER (WHERE type = 'function.call') AS function_calls,
           count(*) FILTER (WHERE type = 'tool.execution') AS tool_executions,
           count(*) FILTER (WHERE type = 'agent.handoff') AS handoffs,
           coalesce(sum(length(text)) FILTER (WHERE type = 'message.output'), 0) AS output_chars
    FROM live_entries
    GROUP BY workspace, conversation_id
)
SELECT c.workspace, c.kind, c.model, c.agent_id, n.agent_name,
       count(*) AS conversations,
       coalesce(sum(p.entries), 0) AS entries,
       coalesce(sum(p.messages), 0) AS messages,
       coalesce(sum(p.function_calls), 0) AS function_calls,
       coalesce(sum(p.tool_executions), 0) AS tool_executions,
       coalesce(sum(p.handoffs), 0) AS handoffs,
       coalesce(sum(p.output_chars), 0) AS output_chars,
       round(avg(coalesce(p.entries, 0)), 2) AS avg_entries_per_conversation,
       min(c.created_at) AS first_created_at,
       max(c.updated_at) AS last_updated_at
FROM live_conversations AS c
LEFT JOIN per_conversation AS p ON p.workspace = c.workspace AND p.conversation_id = c.id
LEFT JOIN agent_names AS n ON n.workspace = c.workspace AND n.agent_id = c.agent_id
GROUP BY ALL
ORDER BY workspace, conversations DESC, kind, model, agent_id;

-- Tokens per UTC day, model and agent: "daily conversations and tokens by model and agent".
-- The export's history carries no token usage, so this reads replay_results: the usage the API
-- reported for each turn `convo-etl replay` sent (conversation.response.done, or a plain
-- response's usage). It counts answered turns (status ok) of every run, on the UTC day the turn
-- started; a turn recovered from history after a cut stream got no usage and adds 0 tokens.
-- A row that did not name its model or agent (a thread's later turn, an append, a restart) is
-- counted under its conversation's, as a replayed start or the export recorded it, else under
-- that of the conversation it restarted from. A conversation deleted since still names the model
-- of its turns: the tokens were spent.
CREATE OR REPLACE VIEW daily_tokens AS
WITH known AS (
    SELECT conversation_id, model, agent_id, started_at AS seen_at
    FROM replay_results
    WHERE conversation_id IS NOT NULL AND (model IS NOT NULL OR agent_id IS NOT NULL)
    UNION ALL
    SELECT id, model, agent_id, created_at
    FROM conversations
), targets AS (
    SELECT conversation_id, model, agent_id
    FROM known
    QUALIFY row_number() OVER (PARTITION BY conversation_id ORDER BY seen_at) = 1
), turns AS (
    SELECT CAST(timezone('UTC', r.started_at) AS DATE) AS day,
           CASE WHEN r.model IS NOT NULL OR r.agent_id IS NOT NULL THEN r.model
                WHEN own.conversation_id IS NOT NULL THEN own.model
                ELSE source.model END AS model,
           CASE WHEN r.model IS NOT NULL OR r.agent_id IS NOT NULL THEN r.agent_id
                WHEN own.conversation_id IS NOT NULL THEN own.agent_id
                ELSE source.agent_id END AS agent_id,
           r.conversation_id, r.prompt_tokens, r.completion_tokens, r.total_tokens
    FROM replay_results AS r
    LEFT JOIN targets AS own ON own.conversation_id = r.conversation_id
    LEFT JOIN targets AS source ON source.conversation_id = r.source_conversation_id
    WHERE r.status = 'ok'
)
SELECT day, model, agent_id,
       count(*) AS turns,
       count(DISTINCT conversation_id) AS conversations,
       coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(completion_tokens), 0) AS completion_tokens,
       coalesce(sum(total_tokens), 0) AS total_tokens
FROM turns
GROUP BY ALL
ORDER BY day, model, agent_id;

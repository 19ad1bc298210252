-- Export tables of the warehouse. Applied on every open: CREATE ... IF NOT EXISTS (a warehouse
-- made before the workspace column is rebuilt first: load/warehouse_upgrade.py).
-- Column order and types follow transform/schemas.py, after the leading workspace (the API
-- workspace, one key, that the row was exported from: the first part of every key). JSON
-- columns hold the API's JSON as sent. Long text is stored zstd-compressed (DuckDB leaves long
-- strings uncompressed otherwise), and the text and content of entries and chunks are generated
-- columns read from raw rather than second copies (bench/size_bench.py measures the bytes).

-- One row per conversation, as last listed or fetched.
CREATE TABLE IF NOT EXISTS conversations (
    workspace        VARCHAR NOT NULL,
    id               VARCHAR NOT NULL,
    kind             VARCHAR,          -- 'model' or 'agent'
    model            VARCHAR,
    agent_id         VARCHAR,
    name             VARCHAR,
    description      VARCHAR,
    instructions     VARCHAR USING COMPRESSION zstd,
    tools            JSON,
    completion_args  JSON,
    metadata         JSON,
    created_at       TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ,
    raw              JSON NOT NULL USING COMPRESSION zstd, -- the conversation object exactly as received
    first_export_run VARCHAR NOT NULL, -- the run that first exported it (kept on re-export)
    last_export_run  VARCHAR NOT NULL, -- the run that last fetched it
    agent_version    VARCHAR,          -- agent conversations: the agent version (string or integer)
    guardrails       JSON,             -- the guardrails the conversation was started with
    deleted_at       TIMESTAMPTZ,      -- when an export found it gone from the API (else null)
    deleted_in_run   VARCHAR,          -- the export run that found it gone
    PRIMARY KEY (workspace, id)
);

-- One row per history entry, in append order (position counts from 0). Key: (workspace,
-- conversation_id, id), kept by the merge (a conversation's rows are replaced whole, in one
-- transaction) rather than by a PRIMARY KEY: DuckDB keeps such an index in memory, and without
-- it merges run twice as fast with less memory (bench/export_bench.py --memory-run).
CREATE TABLE IF NOT EXISTS entries (
    workspace           VARCHAR NOT NULL,
    conversation_id     VARCHAR NOT NULL,
    id                  VARCHAR NOT NULL,
    position            INTEGER NOT NULL,
    type                VARCHAR,       -- message.input, message.output, function.call, ...
    role                VARCHAR,
    -- messages only: the string content, or the text of its chunks joined (from raw)
    text                VARCHAR GENERATED ALWAYS AS (
        CASE json_type(raw, '$.content')
            WHEN 'VARCHAR' THEN json_extract_string(raw, '$.content')
            WHEN 'ARRAY' THEN array_to_string(json_extract_string(raw, '$.content[*].text'), '')
        END) VIRTUAL,
    -- messages only: string or chunk list, as sent (from raw)
    content             JSON GENERATED ALWAYS AS (
        CASE WHEN json_type(raw, '$.content') <> 'NULL' THEN json_extract(raw, '$.content') END
    ) VIRTUAL,
    created_at          TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ,
    model               VARCHAR,
    agent_id            VARCHAR,
    prefix              BOOLEAN,
    tool_call_id        VARCHAR,
    name                VARCHAR,       -- function or built-in tool name
    arguments           JSON USING COMPRESSION zstd, -- a string argument stays a JSON string
    result              VARCHAR USING COMPRESSION zstd,
    info                JSON,
    previous_agent_id   VARCHAR,
    previous_agent_name VARCHAR,
    next_agent_id       VARCHAR,
    next_agent_name     VARCHAR,
    raw                 JSON NOT NULL USING COMPRESSION zstd, -- the entry exactly as received
    export_run          VARCHAR NOT NULL,
    confirmation_status VARCHAR        -- function.call: pending, allowed or denied
);

-- One row per entry of the messages endpoint (message.input / message.output only).
CREATE TABLE IF NOT EXISTS messages (
    workspace           VARCHAR NOT NULL,
    conversation_id     VARCHAR NOT NULL,
    id                  VARCHAR NOT NULL,
    position            INTEGER NOT NULL,
    type                VARCHAR,
    role                VARCHAR,
    text                VARCHAR GENERATED ALWAYS AS (
        CASE json_type(raw, '$.content')
            WHEN 'VARCHAR' THEN json_extract_string(raw, '$.content')
            WHEN 'ARRAY' THEN array_to_string(json_extract_string(raw, '$.content[*].text'), '')
        END) VIRTUAL,
    content             JSON GENERATED ALWAYS AS (
        CASE WHEN json_type(raw, '$.content') <> 'NULL' THEN json_extract(raw, '$.content') END
    ) VIRTUAL,
    created_at          TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ,
    model               VARCHAR,
    agent_id            VARCHAR,
    prefix              BOOLEAN,
    tool_call_id        VARCHAR,
    name                VARCHAR,
    arguments           JSON USING COMPRESSION zstd,
    result              VARCHAR USING COMPRESSION zstd,
    info                JSON,
    previous_agent_id   VARCHAR,
    previous_agent_name VARCHAR,
    next_agent_id       VARCHAR,
    next_agent_name     VARCHAR,
    raw                 JSON NOT NULL USING COMPRESSION zstd,
    export_run          VARCHAR NOT NULL,
    confirmation_status VARCHAR
);

-- One row per chunk of list-valued content of a history entry.
CREATE TABLE IF NOT EXISTS content_chunks (
    workspace       VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    chunk_index     INTEGER NOT NULL,
    type            VARCHAR,           -- text, image_url, document_url, tool_file, tool_reference, thinking
    -- text chunks: their text; thinking chunks: their inner text joined (from raw)
    text            VARCHAR GENERATED ALWAYS AS (
        CASE WHEN json_extract_string(raw, '$.type') = 'thinking'
             THEN array_to_string(json_extract_string(raw, '$.thinking[*].text'), '')
             ELSE json_extract_string(raw, '$.text') END
    ) VIRTUAL,
    url             VARCHAR,           -- image_url (string or .url), document_url, tool_reference url
    tool            VARCHAR,
    title           VARCHAR,
    file_id         VARCHAR,
    file_name       VARCHAR,
    file_type       VARCHAR,
    document_name   VARCHAR,
    raw             JSON NOT NULL USING COMPRESSION zstd,
    export_run      VARCHAR NOT NULL
);

-- One row per export run: what it listed, fetched, skipped and wrote.
CREATE TABLE IF NOT EXISTS export_runs (
    workspace        VARCHAR NOT NULL,
    run_id           VARCHAR NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    fetch_started    TIMESTAMPTZ,      -- first API request (Prefect's start-up excluded)
    fetch_finished   TIMESTAMPTZ,      -- last API response (storing the last batch follows)
    status           VARCHAR,
    mode             VARCHAR,          -- incremental, full or ids
    listed           BIGINT,
    fetched          BIGINT,
    unchanged        BIGINT,
    failed           BIGINT,
    deleted          BIGINT,
    entries_written  BIGINT,
    messages_written BIGINT,
    requests         BIGINT,
    retries          BIGINT,
    duration_s       DOUBLE,
    base_url         VARCHAR,          -- never carries the API key nor URL credentials
    marked_deleted   BIGINT,           -- stored conversations this run found gone from the API
    purged           BIGINT,           -- deleted conversations --purge-deleted removed
    rate_limited     BIGINT,           -- 429s the API answered
    pace_rps         DOUBLE,           -- the pace learned from 429s (null: never limited)
    PRIMARY KEY (workspace, run_id)
);

-- Every conversation a run could not fetch, and why.
CREATE TABLE IF NOT EXISTS export_failures (
    workspace       VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    endpoint        VARCHAR NOT NULL,  -- get, history or messages
    status          INTEGER,           -- HTTP status; null for a transport error
    reason          VARCHAR,
    failed_at       TIMESTAMPTZ
);

-- Which API filled this warehouse (redacted base URL, never a key): an export from another API
-- refuses unless told --allow-mixed. Every emulator counts as one origin (its port changes).
CREATE TABLE IF NOT EXISTS warehouse_origin (
    workspace   VARCHAR NOT NULL,
    origin      VARCHAR NOT NULL,      -- the redacted base URL, or 'emulator'
    base_url    VARCHAR NOT NULL,      -- the redacted base URL of the first run from it
    emulator    BOOLEAN NOT NULL,
    first_run   VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace, origin)
);

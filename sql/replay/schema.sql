-- Replay tables: one row per run, one per (run, CSV row, repeat, variant), one per SSE event.
-- variant is the model or agent of a matrix run ('' when the run had none).
-- Keys are enforced by the merge (delete then insert per batch), not by constraints.

CREATE TABLE IF NOT EXISTS replay_runs (
    run_id VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    source_file VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    repeat INTEGER NOT NULL,
    ok BIGINT,
    errors BIGINT,
    stream BOOLEAN NOT NULL,
    base_url VARCHAR NOT NULL,
    options JSON NOT NULL,
    status VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS replay_results (
    run_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    repeat_index INTEGER NOT NULL,
    row_number INTEGER NOT NULL,
    mode VARCHAR NOT NULL,
    source_conversation_id VARCHAR,
    from_entry_id VARCHAR,
    conversation_id VARCHAR,
    status VARCHAR NOT NULL,
    error VARCHAR,
    recovered BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    output_text VARCHAR,
    output_entry_id VARCHAR,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    total_tokens BIGINT,
    ttft_ms DOUBLE,
    latency_ms DOUBLE,
    events INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    stream BOOLEAN NOT NULL,
    prompt VARCHAR NOT NULL,
    model VARCHAR,
    agent_id VARCHAR,
    thread VARCHAR,
    extra JSON NOT NULL,
    finish VARCHAR,
    function_calls JSON,
    outputs JSON,
    usage JSON,
    last_agent_id VARCHAR,
    variant VARCHAR NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS replay_events (
    run_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    repeat_index INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    event_type VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    elapsed_ms DOUBLE NOT NULL,
    data JSON NOT NULL,
    variant VARCHAR NOT NULL DEFAULT ''
);

-- Columns added since (new columns go last), so an older warehouse upgrades in place; results
-- stored before them have NULL there.
ALTER TABLE replay_results ADD COLUMN IF NOT EXISTS finish VARCHAR;
ALTER TABLE replay_results ADD COLUMN IF NOT EXISTS function_calls JSON;
ALTER TABLE replay_results ADD COLUMN IF NOT EXISTS outputs JSON;
ALTER TABLE replay_results ADD COLUMN IF NOT EXISTS usage JSON;
ALTER TABLE replay_results ADD COLUMN IF NOT EXISTS last_agent_id VARCHAR;
-- Warehouses made before matrix runs: the variant column, at the end like the new DDL's.
ALTER TABLE replay_results ADD COLUMN IF NOT EXISTS variant VARCHAR DEFAULT '';
ALTER TABLE replay_events ADD COLUMN IF NOT EXISTS variant VARCHAR DEFAULT '';
-- Warehouses made before runs had a status: a finished run completed, any other stopped
-- without saying so (no process can be running it: this writer holds the write lock).
ALTER TABLE replay_runs ADD COLUMN IF NOT EXISTS status VARCHAR;
UPDATE replay_runs
SET status = CASE WHEN finished_at IS NULL THEN 'interrupted' ELSE 'completed' END
WHERE status IS NULL;

-- Eval tables: one verdict per (result, check), the checks each run was graded with, and the
-- judge's verdicts cached by (judge model, rubric, output). Keys are kept by the merges.

CREATE TABLE IF NOT EXISTS replay_checks (
    run_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    repeat_index INTEGER NOT NULL,
    variant VARCHAR NOT NULL,
    check_index INTEGER NOT NULL,
    type VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    pass BOOLEAN,
    score DOUBLE,
    reason VARCHAR,
    grader VARCHAR NOT NULL,
    graded_at TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS replay_row_checks (
    run_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    threshold DOUBLE NOT NULL,
    description VARCHAR,
    cells JSON NOT NULL
);

CREATE TABLE IF NOT EXISTS judge_cache (
    cache_key VARCHAR NOT NULL,
    judge_model VARCHAR NOT NULL,
    pass BOOLEAN NOT NULL,
    score DOUBLE NOT NULL,
    reason VARCHAR NOT NULL,
    judged_at TIMESTAMPTZ NOT NULL
);

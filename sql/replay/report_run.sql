-- The replay run a report is about: one row, or none for an unknown run id.
SELECT
    run_id,
    started_at,
    finished_at,
    source_file,
    rows,
    repeat,
    stream,
    base_url,
    CAST(options AS VARCHAR) AS options,
    status
FROM replay_runs
WHERE run_id = $run_id;

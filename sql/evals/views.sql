-- replay_verdicts: pass or fail per result (row, repeat, variant), as transform.outcomes
-- decides it: a result passes when the share of its passing checks reaches the row's
-- __threshold (1 when the row has none); while llm-rubric checks wait for their judge and could
-- still change that, pass is NULL (pending).
CREATE OR REPLACE VIEW replay_verdicts AS
WITH counted AS (
    SELECT
        run_id,
        row_id,
        repeat_index,
        variant,
        count(*) AS checks,
        count(*) FILTER (WHERE pass) AS passed,
        count(*) FILTER (WHERE pass IS NULL) AS pending
    FROM replay_checks
    GROUP BY ALL
)
SELECT
    counted.run_id,
    counted.row_id,
    counted.repeat_index,
    counted.variant,
    counted.checks,
    counted.passed,
    counted.pending,
    counted.passed / counted.checks AS share,
    coalesce(row_checks.threshold, 1.0) AS threshold,
    CASE
        WHEN counted.passed / counted.checks >= coalesce(row_checks.threshold, 1.0) THEN TRUE
        WHEN (counted.passed + counted.pending) / counted.checks
            < coalesce(row_checks.threshold, 1.0) THEN FALSE
    END AS pass
FROM counted
LEFT JOIN replay_row_checks AS row_checks
    ON row_checks.run_id = counted.run_id AND row_checks.row_id = counted.row_id;

-- replay_graded_results: every result with its verdict columns (NULL when it has no checks).
CREATE OR REPLACE VIEW replay_graded_results AS
SELECT
    results.*,
    verdicts.checks,
    verdicts.passed,
    verdicts.pass
FROM replay_results AS results
LEFT JOIN replay_verdicts AS verdicts
    ON verdicts.run_id = results.run_id
    AND verdicts.row_id = results.row_id
    AND verdicts.repeat_index = results.repeat_index
    AND verdicts.variant = results.variant;

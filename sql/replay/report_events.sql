-- How many stream events of each type a run received, most frequent first.
SELECT
    event_type,
    count(*) AS events
FROM replay_events
WHERE run_id = $run_id
GROUP BY event_type
ORDER BY events DESC, event_type;

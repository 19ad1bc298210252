-- Replace a batch's results and their events, keyed by (run_id, row_id, repeat_index, variant):
-- a rerun's result (and its event list, however long) replaces the earlier one.
DELETE FROM replay_events AS stored
USING replay_batch_results AS batch
WHERE stored.run_id = batch.run_id
    AND stored.row_id = batch.row_id
    AND stored.repeat_index = batch.repeat_index
    AND stored.variant = batch.variant;

DELETE FROM replay_results AS stored
USING replay_batch_results AS batch
WHERE stored.run_id = batch.run_id
    AND stored.row_id = batch.row_id
    AND stored.repeat_index = batch.repeat_index
    AND stored.variant = batch.variant;

INSERT INTO replay_results BY NAME SELECT * FROM replay_batch_results;

INSERT INTO replay_events BY NAME SELECT * FROM replay_batch_events;

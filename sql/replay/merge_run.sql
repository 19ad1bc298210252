-- Replace the replay_runs row of a run (written when it starts and again when it finishes).
DELETE FROM replay_runs AS stored
USING replay_batch_run AS batch
WHERE stored.run_id = batch.run_id;

INSERT INTO replay_runs BY NAME SELECT * FROM replay_batch_run;

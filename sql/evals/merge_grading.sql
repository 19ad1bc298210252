-- Replace a run's verdicts and the checks they were graded with: grading a run again (with its
-- own checks or a new CSV) leaves exactly one set.
DELETE FROM replay_checks WHERE run_id IN (SELECT run_id FROM graded_run);

DELETE FROM replay_row_checks WHERE run_id IN (SELECT run_id FROM graded_run);

INSERT INTO replay_checks BY NAME SELECT * FROM graded_checks;

INSERT INTO replay_row_checks BY NAME SELECT * FROM graded_row_checks;

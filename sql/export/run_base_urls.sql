-- Every API an export ran against (the demo refuses to mix its data into a real one).
SELECT DISTINCT base_url FROM export_runs;

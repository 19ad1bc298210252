-- Remember an origin the first time a run exports from it.
INSERT OR IGNORE INTO warehouse_origin VALUES ($origin, $base_url, $emulator, $run_id, now());

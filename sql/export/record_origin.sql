-- Remember an origin the first time a run of workspace $workspace exports from it.
INSERT OR IGNORE INTO warehouse_origin
VALUES ($workspace, $origin, $base_url, $emulator, $run_id, now());

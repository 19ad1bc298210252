-- The origins that filled workspace $workspace of this warehouse, other than $origin.
SELECT origin FROM warehouse_origin WHERE workspace = $workspace AND origin <> $origin
ORDER BY recorded_at;

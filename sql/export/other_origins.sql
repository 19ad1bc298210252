-- The origins of this warehouse other than $origin.
SELECT origin FROM warehouse_origin WHERE origin <> $origin ORDER BY recorded_at;

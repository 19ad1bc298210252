-- Add a block of listed ids (registered as listed_block) to the listing's temp table.
INSERT INTO listed_ids SELECT id FROM listed_block;

-- Insert a slice of the batch's entries rows (batch_rows), after delete_replaced_rows.sql.
INSERT INTO entries BY NAME SELECT * FROM batch_rows;

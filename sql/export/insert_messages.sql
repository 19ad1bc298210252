-- Insert a slice of the batch's messages rows (batch_rows), after delete_replaced_rows.sql.
INSERT INTO messages BY NAME SELECT * FROM batch_rows;

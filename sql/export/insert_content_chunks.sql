-- Insert a slice of the batch's content_chunks rows (batch_rows), after delete_replaced_rows.sql.
INSERT INTO content_chunks BY NAME SELECT * FROM batch_rows;

"""The export: list, fetch and store conversations, the `sql` query and the demo that shows it."""

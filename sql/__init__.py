"""SQL text (DDL, views, merges, report queries): package data, read by load.warehouse."""

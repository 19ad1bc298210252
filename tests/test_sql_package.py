"""The SQL text the warehouse runs: read from the installed package, never silently skipped."""

import pytest

from load.warehouse import SCHEMA_FILES, sql_text


def test_every_schema_file_is_read_from_the_package() -> None:
    for name in SCHEMA_FILES:
        assert "CREATE" in sql_text(name).upper()


def test_a_missing_sql_file_is_an_error() -> None:
    with pytest.raises(FileNotFoundError):
        sql_text("no_such_statement.sql")

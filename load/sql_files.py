"""Read the SQL text the package ships under sql/ (package data, so it works installed)."""

from importlib import resources

SQL_PACKAGE = "sql"


def sql_text(name: str) -> str:
    """The text of ``sql/<name>``, from the installed package; a missing file is an error."""
    return resources.files(SQL_PACKAGE).joinpath(name).read_text(encoding="utf-8")

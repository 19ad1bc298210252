"""One error type for every failure to write the data dir: the path and the OS's reason, one line.

A failed write can surface as an OSError, or inside DuckDB as an IO error whose text holds the
OS's reason; a failed COMMIT then often makes the rollback fail too ("cannot rollback - no
transaction is active"), which must never hide the first error.
"""

import os

import duckdb


class StorageError(OSError):
    """The data dir (or a report) could not be written: ``cannot write PATH: REASON``."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot write {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def storage_error(path: str | os.PathLike[str], error: BaseException) -> StorageError:
    """The StorageError for ``error`` met while writing under ``path`` (kept if it is one)."""
    if isinstance(error, StorageError):
        return error
    if isinstance(error, OSError) and error.strerror:
        where = error.filename if error.filename is not None else path
        return StorageError(where, error.strerror)
    return StorageError(path, _first_line(error))


def _first_line(error: BaseException) -> str:
    """The first line of an error's text (DuckDB's carry a query or a hint on the next lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def is_storage_failure(error: BaseException) -> bool:
    """Whether an error means the disk refused a write (not a bad query or a lock)."""
    return isinstance(error, OSError | duckdb.IOException)

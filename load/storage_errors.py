"""One error type for every failure to write the data dir: the path and the OS's reason, one line.

A failed write can surface as an OSError, or inside DuckDB as an IO error whose text holds the
OS's reason; a failed COMMIT then often makes the rollback fail too ("cannot rollback - no
transaction is active"), which must never hide the first error.
"""

import errno
import os

_DISK_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.EIO,
)


class StorageError(OSError):
    """The data dir (or a report) could not be written: ``cannot write PATH: REASON`` (or read,
    for ``action="read"``)."""

    def __init__(self, path: str | os.PathLike[str], reason: str, action: str = "write") -> None:
        super().__init__(f"cannot {action} {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def storage_error(path: str | os.PathLike[str], error: BaseException) -> StorageError:
    """The StorageError for ``error`` met while writing ``path`` (kept if it is one).

    It names ``path``, what the user asked for, not the temp file or directory that failed.
    """
    if isinstance(error, StorageError):
        return error
    if isinstance(error, OSError) and error.strerror:
        return StorageError(path, error.strerror)
    return StorageError(path, _os_reason(str(error)) or _first_line(error))


def _os_reason(text: str) -> str | None:
    """The OS's reason quoted in an error's text (DuckDB and Arrow quote strerror)."""
    for code in _DISK_ERRNOS:
        reason = os.strerror(code)
        if reason in text:
            return reason
    return None


def _first_line(error: BaseException) -> str:
    """The first line of an error's text (DuckDB's carry a query or a hint on the next lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

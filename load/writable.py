"""Prove a data dir can be written before a command commits to writing it later.

`convo-etl schedule` serves for days before its first run writes: a data dir inside a file, on a
read-only or full disk must be refused when the command starts, not at 2 a.m.
"""

import os
import tempfile
from pathlib import Path

from load.storage_errors import storage_error


def check_writable(data_dir: Path) -> None:
    """Create ``data_dir`` and write, sync and remove a probe file in it; else a StorageError."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".probe-") as probe:
            probe.write(b"convo-etl")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise storage_error(data_dir, error) from error

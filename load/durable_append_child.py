"""The writer process of `load.durable_append`: appends what its parent pipes in, syncs it, and
answers how many bytes are on disk.

It runs as a script (`python -I -S <this file> <path>`), so it imports nothing but the standard
library and starts in milliseconds. Each read from stdin is appended, fsync'd, and answered with
``ok <bytes synced so far>``; an OS error is answered with ``error <errno> <reason>`` and ends
it. The end of stdin (its parent closed it, or died) ends it too.
"""

import contextlib
import os
import sys

READ_BYTES = 1 << 20


def _answer(line: str) -> None:
    with contextlib.suppress(BrokenPipeError):  # the parent is gone: what is on disk stays
        os.write(1, line.encode() + b"\n")


def append_and_sync(path: str) -> int:
    """Append stdin to ``path`` one read at a time, each synced before it is acknowledged."""
    synced = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        while chunk := os.read(0, READ_BYTES):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            synced += len(chunk)
            _answer(f"ok {synced}")
    except OSError as error:
        _answer(f"error {error.errno} {error.strerror}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(append_and_sync(sys.argv[1]))

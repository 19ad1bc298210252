"""The warehouse's read socket: where it lives and how a query and its answer travel on it.

The process that holds the warehouse's write connection serves reads on a Unix socket beside
the file (``<data_dir>/.warehouse.sock``, mode 0600), because DuckDB lets no other process open
the file while it writes. A request is one frame (4-byte big-endian length, then JSON: ``sql``
and ``params``); the answer is one byte, then either an Arrow IPC stream (``ANSWER_ROWS``) or a
frame holding a one-line message (``ANSWER_REFUSED``, ``ANSWER_FAILED``).
"""

import contextlib
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

SOCKET_NAME = ".warehouse.sock"
ANSWER_ROWS = b"A"
ANSWER_REFUSED = b"R"
ANSWER_FAILED = b"E"
MAX_REQUEST_BYTES = 64 * 2**20
# sun_path holds 108 bytes on Linux, 104 on macOS; a longer path goes through the directory's
# descriptor (/proc/self/fd/N/NAME, Linux only).
_MAX_SOCKET_PATH = 100
_LENGTH = struct.Struct(">I")


class ServerAbsent(Exception):
    """No process serves reads of this warehouse (no socket, nobody listening, or it stopped)."""


def socket_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the read socket of a data directory's warehouse lives."""
    return Path(data_dir) / SOCKET_NAME


@contextlib.contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for bind or connect naming ``path``, however long its directory's name."""
    if len(os.fsencode(path.absolute())) <= _MAX_SOCKET_PATH:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def connect(data_dir: str | os.PathLike[str], timeout: float | None = None) -> socket.socket:
    """A connection to the warehouse's read server, or ServerAbsent."""
    path = socket_path(data_dir)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        with socket_address(path) as address:
            client.connect(address)
    except OSError as error:
        client.close()
        raise ServerAbsent(f"no read server at {path}: {error.strerror or error}") from None
    return client


def server_answers(data_dir: str | os.PathLike[str]) -> bool:
    """Whether a process serves reads of the warehouse: then it holds the write connection."""
    try:
        connect(data_dir, timeout=5.0).close()
    except ServerAbsent:
        return False
    return True


def send_frame(connection: socket.socket, payload: bytes) -> None:
    """Send ``payload`` with its length in front."""
    connection.sendall(_LENGTH.pack(len(payload)) + payload)


def receive_frame(connection: socket.socket, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """One frame's payload; ConnectionError when the peer closes early or claims too much."""
    (length,) = _LENGTH.unpack(_receive_exactly(connection, _LENGTH.size))
    if length > limit:
        raise ConnectionError(f"a frame of {length} bytes is over the {limit}-byte limit")
    return _receive_exactly(connection, length)


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the read socket closed in the middle of a frame")
        chunks += chunk
    return bytes(chunks)

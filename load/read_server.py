"""Serve read queries from the process that holds the warehouse's write connection.

DuckDB locks the file for the one process that writes, so no other process can open it, even
read-only, for as long as an export, a replay or a grading runs. That process answers the
others' queries instead: each on a fresh cursor of its connection, in a READ ONLY transaction
that is rolled back, so it sees the last committed state (DuckDB's MVCC) and can change nothing.
Only SELECT and EXPLAIN statements are run (DuckDB's own parser says which a text holds).
Requests come from the same user only (socket mode 0600, and the peer's uid is checked).
"""

import contextlib
import os
import selectors
import socket
import struct
import sys
import threading

import duckdb
import orjson
import pyarrow as pa

from load.read_socket import (
    ANSWER_FAILED,
    ANSWER_REFUSED,
    ANSWER_ROWS,
    receive_frame,
    send_frame,
    socket_address,
    socket_path,
)

READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
ROWS_PER_BATCH = 65_536
# Queries still running when the writer is done get this long before they are interrupted.
DRAIN_SECONDS = 30.0
_PEER_CREDENTIALS = struct.Struct("3i")


def serving_reads(
    connection: duckdb.DuckDBPyConnection, data_dir: str | os.PathLike[str]
) -> "ReadServer":
    """Answer other processes' read queries on ``<data_dir>/.warehouse.sock`` until closed.

    ``connection`` is the warehouse's write connection, open in this process; close the server
    (or leave its ``with`` block) before the connection. Works in whichever process holds it.
    """
    return ReadServer(connection, data_dir)


class ReadServer:
    """A started read server (or, where the socket cannot be made, a warning and nothing):
    ``close()`` it, or use it as a context manager."""

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, data_dir: str | os.PathLike[str]
    ) -> None:
        self.path = socket_path(data_dir)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._wake, stop = socket.socketpair()
        try:
            # Whoever holds the write connection owns the socket: an older one is a dead
            # writer's.
            self.path.unlink(missing_ok=True)
            with socket_address(self.path) as address:
                listener.bind(address)
            os.chmod(self.path, 0o600)
            listener.listen()
        except BaseException as error:
            for end in (listener, self._wake, stop):
                end.close()
            if not isinstance(error, OSError):
                raise
            # A disk that holds no sockets must not stop the run: its readers wait instead.
            print(
                f"cannot serve reads on {self.path} ({error.strerror or error}): "
                "readers wait until this run ends",
                file=sys.stderr,
                flush=True,
            )
            return
        self._server = _Acceptor(listener, stop, connection.cursor())
        self._thread = threading.Thread(
            target=self._server.serve, name="warehouse-reads", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, let running queries end (or interrupt them), remove the socket."""
        if self._wake.fileno() < 0:
            return
        self._wake.send(b"x")
        self._thread.join()
        self._server.close()
        self._wake.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "ReadServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Acceptor:
    """Accepts connections until told to stop; one thread per query."""

    def __init__(
        self, listener: socket.socket, stop: socket.socket, root: duckdb.DuckDBPyConnection
    ) -> None:
        self._listener = listener
        self._stop = stop
        self._root = root
        self._lock = threading.Lock()
        self._running: dict[threading.Thread, duckdb.DuckDBPyConnection] = {}

    def serve(self) -> None:
        """Accept until the stop socket is written to (cursors are made here, one thread)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._stop, selectors.EVENT_READ)
            while not any(key.fileobj is self._stop for key, _ in selector.select()):
                try:
                    peer, _ = self._listener.accept()
                except OSError:
                    continue
                if not _same_user(peer):
                    peer.close()
                    continue
                cursor = self._root.cursor()
                thread = threading.Thread(target=self._answer, args=(peer, cursor), daemon=True)
                with self._lock:
                    self._running[thread] = cursor
                thread.start()

    def close(self) -> None:
        """Let running queries finish for a while, interrupt the rest, close every socket and
        cursor (call once serve has returned)."""
        with self._lock:
            running = dict(self._running)
        for thread in running:
            thread.join(DRAIN_SECONDS)
        for thread, cursor in running.items():
            if thread.is_alive():
                cursor.interrupt()
                thread.join()
        self._root.close()
        self._listener.close()
        self._stop.close()

    def _answer(self, peer: socket.socket, cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            with peer, cursor:
                _answer_query(peer, cursor)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # the reader went away, or sent no request: nothing to answer
        finally:
            with self._lock:
                self._running.pop(threading.current_thread(), None)


def _answer_query(peer: socket.socket, cursor: duckdb.DuckDBPyConnection) -> None:
    """Read one request from ``peer``, and send its rows or the one line saying why not."""
    request = orjson.loads(receive_frame(peer))
    query, params = request["sql"], request.get("params")
    try:
        statements = cursor.extract_statements(query)
    except duckdb.Error as error:
        _send_message(peer, ANSWER_FAILED, _first_line(error))
        return
    refused = sorted({s.type.name for s in statements if s.type not in READ_STATEMENTS})
    if refused or not statements:
        _send_message(
            peer,
            ANSWER_REFUSED,
            "only SELECT and EXPLAIN run while a writer holds the warehouse; refused: "
            + (", ".join(refused) or "an empty query"),
        )
        return
    cursor.execute("BEGIN TRANSACTION READ ONLY")
    try:
        # The whole result is read before the transaction ends: a reader never waits on the
        # writer's process for more, and an error is known before the first row is sent.
        rows = cursor.sql(query, params=params).to_arrow_table()
    except Exception as error:  # whatever fails, the reader gets its one line
        _send_message(peer, ANSWER_FAILED, _first_line(error))
        return
    finally:
        with contextlib.suppress(duckdb.Error):
            cursor.execute("ROLLBACK")
    peer.sendall(ANSWER_ROWS)
    with peer.makefile("wb") as sink, pa.ipc.new_stream(sink, rows.schema) as stream:
        stream.write_table(rows, max_chunksize=ROWS_PER_BATCH)


def _send_message(peer: socket.socket, kind: bytes, message: str) -> None:
    peer.sendall(kind)
    send_frame(peer, message.encode())


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _same_user(peer: socket.socket) -> bool:
    """Whether the connecting process runs as this one's user (where the OS tells)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEER_CREDENTIALS.size)
    _, uid, _ = _PEER_CREDENTIALS.unpack(credentials)
    return uid == os.geteuid()

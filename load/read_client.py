"""Read the warehouse's last committed state, whether or not another process is writing to it.

A reader opens the file read-only when it can. While a writer holds it (DuckDB lets no one else
open it), the reader sends each query to the writer's read socket (load.read_server) and gets
its rows back as Arrow, which a private in-memory DuckDB then serves as an ordinary result; so
callers use ``execute`` and ``sql`` as on a connection. When neither works (a writer that serves
no reads, or one about to), the reader waits, bounded (load.lock_wait), then raises
WarehouseLocked.
"""

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from load.lock_wait import LockWait, WarehouseLocked
from load.read_socket import (
    ANSWER_REFUSED,
    ANSWER_ROWS,
    ServerAbsent,
    connect,
    receive_frame,
    send_frame,
)
from load.warehouse import open_warehouse, warehouse_path

Parameters = Sequence[Any] | Mapping[str, Any] | None


class QueryRefused(duckdb.Error):
    """The writer's read server would not run the query (it is not a read); one line."""


class RemoteQueryFailed(duckdb.Error):
    """The query failed in the writer's process (a syntax or catalog error...); one line."""


def query_read_server(data_dir: str | os.PathLike[str], query: str, params: Parameters) -> pa.Table:
    """The rows of ``query`` as the warehouse's writer answers it; ServerAbsent when none does."""
    request = orjson.dumps({"sql": query, "params": params})
    with connect(data_dir) as server:
        try:
            send_frame(server, request)
            kind = _receive_kind(server)
            if kind == ANSWER_ROWS:
                with server.makefile("rb") as source:
                    return pa.ipc.open_stream(source).read_all()
            message = receive_frame(server).decode()
        except (OSError, pa.ArrowInvalid) as error:
            raise ServerAbsent(f"the read server stopped answering: {error}") from None
    raise (QueryRefused if kind == ANSWER_REFUSED else RemoteQueryFailed)(message)


def _receive_kind(server: socket.socket) -> bytes:
    kind = server.recv(1)
    if not kind:
        raise ConnectionError("the read server closed the connection without an answer")
    return kind


class WarehouseReader:
    """The warehouse for reading: ``execute`` and ``sql`` as on a read-only DuckDB connection.

    Raises FileNotFoundError when there is no warehouse, WarehouseLocked when the wait for a
    reachable one ran out, and duckdb.Error (QueryRefused for a write) when a query fails.
    """

    def __init__(self, data_dir: str | os.PathLike[str], lock_wait: LockWait | None = None) -> None:
        self._data_dir = Path(data_dir)
        self._lock_wait = lock_wait or LockWait()
        self._direct: duckdb.DuckDBPyConnection | None = None
        self._answers = duckdb.connect()
        self._answers.execute("SET TimeZone = 'UTC'")
        try:
            self._direct = open_warehouse(self._data_dir, read_only=True)
        except WarehouseLocked:
            pass  # the writer answers, when it serves reads
        except BaseException:
            self._answers.close()
            raise

    def execute(self, query: str, parameters: Parameters = None) -> duckdb.DuckDBPyConnection:
        """A cursor positioned on ``query``'s result (fetchall, fetchone, description...)."""
        if self._direct is not None:
            return self._direct.execute(query, parameters)
        cursor = self._answers.cursor()
        cursor.register("answer", self._remote_rows(query, parameters))
        return cursor.execute("FROM answer")

    def sql(self, query: str, params: Parameters = None) -> duckdb.DuckDBPyRelation:
        """``query``'s result as a relation (to_arrow_table, pl...)."""
        if self._direct is not None:
            return self._direct.sql(query, params=params)
        return self._answers.from_arrow(self._remote_rows(query, params))

    def _remote_rows(self, query: str, params: Parameters) -> pa.Table:
        """The writer's answer; when no writer answers, the file itself once it is free."""
        while True:
            try:
                return query_read_server(self._data_dir, query, params)
            except ServerAbsent:
                pass
            try:
                self._direct = open_warehouse(self._data_dir, read_only=True)
            except WarehouseLocked:
                path = warehouse_path(self._data_dir)
                self._lock_wait.pause(
                    WarehouseLocked(
                        f"the process writing to {path} serves no reads (an older convo-etl?) "
                        "and did not finish in time"
                    ),
                    f"waiting for the process writing to {path} to serve reads or finish",
                )
                continue
            return self._direct.sql(query, params=params).to_arrow_table()

    def close(self) -> None:
        """Close the file (when open) and the answers' in-memory database."""
        if self._direct is not None:
            self._direct.close()
        self._answers.close()

    def __enter__(self) -> "WarehouseReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# What a reading function takes: the file opened read-only, or a reader that may go through the
# writer (both answer execute and sql the same way).
ReadConnection = duckdb.DuckDBPyConnection | WarehouseReader

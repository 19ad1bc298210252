"""Small misbehaving HTTP servers on loopback, for the tests named test_hostile_*.

``serving(handle)`` runs an asyncio server on its own thread and loop, so a test can drive the
client with ``asyncio.run`` while the server drips, stalls or floods; on exit every connection
handler is cancelled.
"""

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pytest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class HostileServer(Protocol):
    """A server object: its ``handle`` serves one connection and keeps the counts."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection."""


ServerT = TypeVar("ServerT", bound=HostileServer)


@dataclass(frozen=True)
class Request:
    """What the server read of one request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request off the connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


def response_head(status: int, headers: dict[str, str] | None = None) -> bytes:
    """The status line and headers of an answer (add content-length or chunking yourself)."""
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A complete answer with a JSON body."""
    fields = {"content-type": "application/json", "content-length": str(len(body))}
    return response_head(status, {**fields, **(headers or {})}) + body


@contextlib.contextmanager
def serving(handle: Handler) -> Iterator[str]:
    """Serve ``handle`` on 127.0.0.1 from a background thread; yields the base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    async def stop(server: asyncio.Server) -> None:
        server.close()
        current = asyncio.current_task()
        handlers = [task for task in asyncio.all_tasks() if task is not current]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result()
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        asyncio.run_coroutine_threadsafe(stop(server), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def server_fixture(make: Callable[[], ServerT]) -> Any:
    """A pytest fixture serving a fresh ``make()`` for one test; it yields ``(server, url)``."""

    @pytest.fixture
    def fixture() -> Iterator[tuple[ServerT, str]]:
        server = make()
        with serving(server.handle) as url:
            yield server, url

    return fixture

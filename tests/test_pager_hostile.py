"""The list pager against servers that break the list contract: one clear error, soon.

Each server is a few lines of http.server on loopback, answering GET /v1/conversations with a
body chosen from the page asked for, and counting the requests it got.
"""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from typer.testing import CliRunner

from extract.client import ClientConfig, ConversationsClient
from extract.errors import ApiError
from extract.pager import ListingBroken, iter_conversation_pages
from flows.cli import app

Body = Callable[[int, int], Any]
WINDOW = 16


class ListServer:
    """A loopback list endpoint serving ``body(page, page_size)`` as JSON, counting requests."""

    def __init__(self, body: Body) -> None:
        self.body = body
        self.requests = 0
        self._lock = threading.Lock()
        self.url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/v1/conversations":
                    self.reply(404, {"detail": "Not Found"})
                    return
                with server._lock:
                    server.requests += 1
                query = parse_qs(url.query)
                page, size = int(query["page"][0]), int(query["page_size"][0])
                self.reply(200, server.body(page, size))

            def reply(self, status: int, body: Any) -> None:
                payload = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                """Quiet: the tests assert on counts, not on logs."""

        return Handler


class QuietServer(ThreadingHTTPServer):
    """Requests cut short by a client that stopped listening are not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore: the pager cancels the pages it fetched past the end or past an error."""


@contextmanager
def serving(body: Body) -> Iterator[ListServer]:
    """Serve ``body`` on a free loopback port until the block ends."""
    server = ListServer(body)
    httpd = QuietServer(("127.0.0.1", 0), server.handler())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def conversations(first: int, count: int) -> list[dict]:
    return [{"id": f"conv_{n:05d}", "object": "conversation"} for n in range(first, first + count)]


def walk(
    server: ListServer, page_size: int = 10, window: int = WINDOW, into: list | None = None
) -> list[list[dict]]:
    """Every page the pager yields (appended to ``into`` as they come, so an error keeps them)."""
    pages: list[list[dict]] = [] if into is None else into

    async def run() -> None:
        config = ClientConfig(base_url=server.url, api_key="sk-test", max_retries=0)
        async with ConversationsClient(config) as client:
            async for page in iter_conversation_pages(client, page_size, window=window):
                pages.append(page)

    asyncio.run(asyncio.wait_for(run(), timeout=60))  # a hang check, not a timing
    return pages


def broken_walk(server: ListServer) -> tuple[ListingBroken, list[list[dict]]]:
    """The ListingBroken a walk ends with, and the pages it yielded before it."""
    pages: list[list[dict]] = []
    with pytest.raises(ListingBroken) as caught:
        walk(server, into=pages)
    return caught.value, pages


@pytest.mark.parametrize("window", [1, WINDOW])
def test_a_server_ignoring_page_stops_after_two_pages_with_nothing_new(window: int) -> None:
    with (
        serving(lambda page, size: conversations(0, size)) as server,
        pytest.raises(ListingBroken) as caught,
    ):
        walk(server, window=window)
    assert str(caught.value) == (
        "list: HTTP 200: page 2: 2 full pages in a row brought no conversation not listed "
        "already: the server seems to ignore `page`"
    )
    assert caught.value.page == 2
    assert isinstance(caught.value, ApiError)
    # Page 0, page 1 (page 2 fetched ahead with it), page 2 again after the list moved.
    assert server.requests <= 4


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"data": conversations(0, 10)}, "expected a JSON array of conversations, got an object"),
        (None, "expected a JSON array of conversations, got null"),
        (["conv_00001", "conv_00002"], "item 0 is a string, not a conversation object"),
        ([{"id": "conv_00001"}, 7], "item 1 is a number, not a conversation object"),
        ([{"object": "conversation"}], 'item 0 has no string "id"'),
        ([{"id": 12}], 'item 0 has no string "id"'),
    ],
)
def test_a_body_that_is_not_a_list_of_conversations_is_named_with_its_page(
    body: Any, problem: str
) -> None:
    with serving(lambda page, size: body) as server:
        error, pages = broken_walk(server)
    assert str(error) == f"list: HTTP 200: page 0: {problem}"
    assert pages == []


def test_a_bad_page_after_good_ones_comes_after_them() -> None:
    def body(page: int, size: int) -> Any:
        return conversations(page * size, size) if page < 3 else {"detail": "gone"}

    with serving(body) as server:
        error, pages = broken_walk(server)
    assert (
        str(error)
        == "list: HTTP 200: page 3: expected a JSON array of conversations, got an object"
    )
    assert [c["id"] for page in pages for c in page] == [c["id"] for c in conversations(0, 30)]


def test_pages_fetched_past_the_end_are_never_looked_at() -> None:
    def body(page: int, size: int) -> Any:
        if page < 40:
            return conversations(page * size, size)
        return conversations(page * size, 3) if page == 40 else "past the end"

    with serving(body) as server:
        pages = walk(server)
        assert [len(page) for page in pages] == [10] * 40 + [3]
        assert 41 <= server.requests <= 41 + WINDOW - 1


def test_no_more_list_requests_in_flight_than_the_window() -> None:
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def body(page: int, size: int) -> Any:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        return conversations(page * size, size if page < 60 else 0)

    with serving(body) as server:
        pages = walk(server, window=4)
        assert len(pages) == 60
        assert server.requests <= 61 + 4 - 1
    assert 1 < most <= 4


def test_the_export_command_prints_the_broken_listing_as_one_line(
    prefect_harness: None, data_dir: Path
) -> None:
    with serving(lambda page, size: conversations(0, size)) as server:
        result = CliRunner().invoke(
            app,
            ["export", "--base-url", server.url, "--data-dir", str(data_dir)],
            env={"MISTRAL_API_KEY": "sk-test"},
        )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == (
        "error: list: HTTP 200: page 2: 2 full pages in a row brought no conversation not "
        "listed already: the server seems to ignore `page`"
    )

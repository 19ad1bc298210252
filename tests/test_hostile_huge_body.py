"""Bodies over max_body_bytes are refused without being read whole; smaller ones come exactly."""

import asyncio
import time

import pytest
from hostile import read_request, response_head, server_fixture

from extract.client import ClientConfig, ConversationsClient
from extract.errors import BodyTooLarge

HANG_BOUND_S = 60
LIMIT = 2**20
PIECE = b"y" * 2**16


def _exact_body(size: int) -> bytes:
    """A JSON string body of exactly ``size`` bytes."""
    return b'"' + b"z" * (size - 2) + b'"'


class HugeBodies:
    """Serves, by path: a declared 2 GiB body, an endless chunked one, and exact-size ones."""

    def __init__(self) -> None:
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            self.requests += 1
            if "/declared" in request.path:
                writer.write(response_head(200, {"content-length": str(2 * 2**30)}))
                while True:
                    writer.write(PIECE)
                    await writer.drain()
            if "/endless" in request.path:
                writer.write(response_head(200, {"transfer-encoding": "chunked"}))
                while True:
                    writer.write(b"%x\r\n%s\r\n" % (len(PIECE), PIECE))
                    await writer.drain()
            body = _exact_body(LIMIT)
            if "/chunked" in request.path:
                writer.write(response_head(200, {"transfer-encoding": "chunked"}))
                for start in range(0, len(body), len(PIECE)):
                    piece = body[start : start + len(PIECE)]
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(response_head(200, {"content-length": str(len(body))}) + body)
            await writer.drain()


huge = server_fixture(HugeBodies)


def _history_body(url: str, cid: str) -> bytes | BodyTooLarge:
    config = ClientConfig(base_url=url, api_key="sk-huge", max_body_bytes=LIMIT)

    async def fetch() -> bytes | BodyTooLarge:
        async with ConversationsClient(config) as client:
            try:
                return await client.history_body(cid)
            except BodyTooLarge as error:
                return error

    began = time.monotonic()
    outcome = asyncio.run(fetch())
    assert time.monotonic() - began < HANG_BOUND_S
    return outcome


def test_a_declared_huge_body_is_refused_before_reading(huge: tuple[HugeBodies, str]) -> None:
    server, url = huge
    error = _history_body(url, "declared")
    assert isinstance(error, BodyTooLarge)
    assert str(error) == (
        "history: HTTP 200: response body declares 2,147,483,648 bytes,"
        " over the limit of 1,048,576 (max_body_bytes)"
    )
    assert server.requests == 1


def test_an_endless_chunked_body_is_cut_at_the_cap(huge: tuple[HugeBodies, str]) -> None:
    server, url = huge
    error = _history_body(url, "endless")
    assert isinstance(error, BodyTooLarge)
    assert "over the limit of 1,048,576 (max_body_bytes)" in str(error)
    assert server.requests == 1


@pytest.mark.parametrize("cid", ["sized", "chunked"])
def test_a_body_at_the_cap_comes_back_exactly(huge: tuple[HugeBodies, str], cid: str) -> None:
    server, url = huge
    assert _history_body(url, cid) == _exact_body(LIMIT)
    assert server.requests == 1

"""An SSE line that never ends: refused at max_body_bytes instead of growing without bound."""

import asyncio
import time

import pytest
from hostile import read_request, response_head, server_fixture

from extract.client import ClientConfig, ConversationsClient
from extract.errors import BodyTooLarge

HANG_BOUND_S = 60
LIMIT = 2**20
PIECE = b"x" * 2**16


class EndlessLine:
    """Starts an event's data line and never ends it; counts the bytes it managed to send."""

    def __init__(self) -> None:
        self.sent = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader) is None:
            return
        self.requests += 1
        writer.write(response_head(200, {"content-type": "text/event-stream"}) + b"data: ")
        while True:
            writer.write(PIECE)
            await writer.drain()
            self.sent += len(PIECE)


endless_line = server_fixture(EndlessLine)


def test_an_endless_sse_line_is_refused_at_the_size_cap(
    endless_line: tuple[EndlessLine, str],
) -> None:
    server, url = endless_line
    config = ClientConfig(base_url=url, api_key="sk-line", max_body_bytes=LIMIT)

    async def run() -> BodyTooLarge:
        async with ConversationsClient(config) as client:
            with pytest.raises(BodyTooLarge) as caught:
                async for _ in client.stream_start({"inputs": "hi", "model": "m"}):
                    pass
        return caught.value

    began = time.monotonic()
    error = asyncio.run(run())
    assert time.monotonic() - began < HANG_BOUND_S
    assert error.operation == "start_stream"
    assert "an event exceeds the limit of 1,048,576 bytes (max_body_bytes)" in str(error)
    assert server.requests == 1
    # It stopped reading near the cap: what the server got out is the cap plus socket buffers.
    assert server.sent < 64 * LIMIT

"""Streams that never end: keep-alive comments do not count as events, and a stream is bounded."""

import asyncio
import time

import pytest
from hostile import read_request, response_head, server_fixture

from extract.client import ClientConfig, ConversationsClient
from extract.errors import StreamTimedOut
from extract.events import StreamEvent

HANG_BOUND_S = 60
SSE_HEAD = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
DELTA = b'event: message.output.delta\ndata: {"type":"message.output.delta","content":"a"}\n\n'


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class EndlessStream:
    """Answers a stream with ``payload`` every 0.1 s, forever; counts the requests."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader) is None:
            return
        self.requests += 1
        writer.write(response_head(200, SSE_HEAD))
        while True:
            writer.write(_chunk(self.payload))
            await writer.drain()
            await asyncio.sleep(0.1)


keepalive_only = server_fixture(lambda: EndlessStream(b": keep-alive\n\n"))


endless_deltas = server_fixture(lambda: EndlessStream(DELTA))


def _stream(url: str, **deadlines: float) -> tuple[list[StreamEvent], StreamTimedOut]:
    config = ClientConfig(base_url=url, api_key="sk-keepalive", **deadlines)

    async def run() -> tuple[list[StreamEvent], StreamTimedOut]:
        seen: list[StreamEvent] = []
        async with ConversationsClient(config) as client:
            with pytest.raises(StreamTimedOut) as caught:
                async for event in client.stream_start({"inputs": "hi", "model": "m"}):
                    seen.append(event)
        return seen, caught.value

    began = time.monotonic()
    outcome = asyncio.run(run())
    assert time.monotonic() - began < HANG_BOUND_S
    return outcome


def test_keep_alives_alone_hit_the_idle_timeout(
    keepalive_only: tuple[EndlessStream, str],
) -> None:
    server, url = keepalive_only
    seen, error = _stream(url, stream_idle_timeout=1.0, read_timeout=30.0)
    assert seen == []
    assert error.events == []
    assert str(error) == "start_stream: HTTP 200: no event for 1 s (stream_idle_timeout)"
    assert server.requests == 1


def test_a_stream_of_events_without_an_end_hits_the_stream_timeout(
    endless_deltas: tuple[EndlessStream, str],
) -> None:
    server, url = endless_deltas
    seen, error = _stream(url, stream_idle_timeout=5.0, stream_timeout=1.5)
    assert seen
    assert error.events == seen
    assert {e.type for e in seen} == {"message.output.delta"}
    assert str(error) == "start_stream: HTTP 200: stream exceeded 1.5 s (stream_timeout)"
    assert server.requests == 1

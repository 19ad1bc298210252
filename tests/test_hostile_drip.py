"""A server that drips its answer one byte at a time: request_timeout bounds the whole call."""

import asyncio
import time
from collections import Counter

import pytest
from hostile import read_request, response_head, server_fixture

from extract.client import ClientConfig, ConversationsClient
from extract.errors import RequestTimedOut, RetriesExhausted

DRIP_EVERY_S = 0.3
HANG_BOUND_S = 60


class DripServer:
    """Promises a 1000-byte JSON body, then sends one byte every DRIP_EVERY_S seconds."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if request is None:
            return
        self.requests[request.method] += 1
        head = {"content-type": "application/json", "content-length": "1000"}
        writer.write(response_head(200, head))
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(DRIP_EVERY_S)


drip = server_fixture(DripServer)


def _config(url: str) -> ClientConfig:
    # Every byte arrives well within read_timeout: only the whole-call deadline can end this.
    return ClientConfig(
        base_url=url,
        api_key="sk-drip",
        request_timeout=1.0,
        read_timeout=30.0,
        max_retries=1,
        backoff_initial=0.001,
    )


def test_a_dripping_get_times_out_in_all_and_is_retried(drip: tuple[DripServer, str]) -> None:
    server, url = drip

    async def fetch() -> RetriesExhausted:
        async with ConversationsClient(_config(url)) as client:
            with pytest.raises(RetriesExhausted) as caught:
                await client.get_conversation("conv_1")
        return caught.value

    began = time.monotonic()
    error = asyncio.run(fetch())
    assert time.monotonic() - began < HANG_BOUND_S
    assert str(error) == (
        "get: transport error: gave up after 2 attempts:"
        " TimeoutError: no complete answer within 1 s (request_timeout)"
    )
    assert server.requests == {"GET": 2}


def test_a_dripping_post_is_not_resent(drip: tuple[DripServer, str]) -> None:
    server, url = drip

    async def start() -> RequestTimedOut:
        async with ConversationsClient(_config(url)) as client:
            with pytest.raises(RequestTimedOut) as caught:
                await client.start_conversation({"inputs": "hi", "model": "m"})
        return caught.value

    began = time.monotonic()
    error = asyncio.run(start())
    assert time.monotonic() - began < HANG_BOUND_S
    assert str(error) == (
        "start: transport error: no complete answer within 1 s (request_timeout):"
        " it may have been applied, so it was not resent"
    )
    assert server.requests == {"POST": 1}

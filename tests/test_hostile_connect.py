"""A wrong URL fails at once, naming it; once the API answered, transport errors are retried."""

import asyncio
import time

import pytest
from hostile import json_answer, read_request, server_fixture

from extract.client import ClientConfig, ConversationsClient
from extract.errors import NotFound, Unreachable

HANG_BOUND_S = 60


def _first_call(config: ClientConfig) -> tuple[Unreachable, ConversationsClient]:
    async def call() -> tuple[Unreachable, ConversationsClient]:
        async with ConversationsClient(config) as client:
            with pytest.raises(Unreachable) as caught:
                await client.list_conversations()
        return caught.value, client

    began = time.monotonic()
    outcome = asyncio.run(call())
    assert time.monotonic() - began < HANG_BOUND_S
    return outcome


def test_an_unresolvable_host_is_one_error_naming_the_url() -> None:
    url = "http://convo-etl-no-such-host.invalid"
    error, client = _first_call(ClientConfig(base_url=url, api_key="sk-dns"))
    assert str(error).startswith(f"list: transport error: cannot reach {url}/v1/conversations: ")
    assert (client.stats.requests, client.stats.retries) == (1, 0)


class PlainText:
    """Answers anything, TLS hellos included, with a plain-HTTP 400; counts connections."""

    def __init__(self) -> None:
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()


plain = server_fixture(PlainText)


def test_a_tls_failure_is_one_error_naming_the_url(plain: tuple[PlainText, str]) -> None:
    server, url = plain
    tls_url = url.replace("http://", "https://")
    error, client = _first_call(ClientConfig(base_url=tls_url, api_key="sk-tls"))
    assert str(error).startswith(
        f"list: transport error: cannot reach {tls_url}/v1/conversations: "
    )
    assert "SSL" in str(error)
    assert (client.stats.requests, server.connections) == (1, 1)


class FlakyAfterFirst:
    """Answers, then drops the next two requests unanswered, then answers again.

    Two: aiohttp itself resends a GET once when a reused connection drops.
    """

    def __init__(self) -> None:
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            self.requests += 1
            if self.requests in (2, 3):
                writer.transport.abort()
                return
            writer.write(json_answer(200, b"{}"))
            await writer.drain()


flaky = server_fixture(FlakyAfterFirst)


def test_transport_errors_later_in_a_run_are_retried(
    flaky: tuple[FlakyAfterFirst, str],
) -> None:
    server, url = flaky
    config = ClientConfig(base_url=url, api_key="sk-flaky", backoff_initial=0.001)

    async def calls() -> ConversationsClient:
        async with ConversationsClient(config) as client:
            assert await client.get_conversation("conv_1") == {}
            assert await client.get_conversation("conv_2") == {}
        return client

    client = asyncio.run(calls())
    assert (client.stats.requests, client.stats.retries, client.stats.transport_errors) == (3, 1, 1)
    assert server.requests == 4


class NoSuchPath:
    """A server where every path is a 404, as when the base URL carries an extra /v1."""

    def __init__(self) -> None:
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            self.requests += 1
            writer.write(json_answer(404, b'{"detail":"Not Found"}'))
            await writer.drain()


no_such_path = server_fixture(NoSuchPath)


def test_a_404_on_the_list_hints_at_the_base_url(no_such_path: tuple[NoSuchPath, str]) -> None:
    server, url = no_such_path
    config = ClientConfig(base_url=f"{url}/v1", api_key="sk-404")

    async def call() -> NotFound:
        async with ConversationsClient(config) as client:
            with pytest.raises(NotFound) as caught:
                await client.list_conversations()
        return caught.value

    error = asyncio.run(call())
    assert str(error) == (
        f"list: HTTP 404: Not Found (no conversation list under {url}/v1: the base URL should"
        " look like https://api.mistral.ai, without /v1 or another path)"
    )
    assert server.requests == 1

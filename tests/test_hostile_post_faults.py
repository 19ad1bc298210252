"""A 5xx to a POST may come after the turn was stored: never resent; a 429 (refused) is."""

import asyncio
from collections import Counter

import pytest
from hostile import json_answer, read_request, server_fixture

from extract.client import ClientConfig, ConversationsClient
from extract.errors import OutcomeUnknown

ANSWER = b'{"conversation_id":"conv_1","outputs":[],"usage":{}}'


class ScriptedServer:
    """Answers each request with the next status of its script (200 once it runs out)."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.requests: Counter[tuple[str, int]] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            status = self.script.pop(0) if self.script else 200
            self.requests[(request.method, status)] += 1
            body = b"<html>bad gateway</html>" if status >= 500 else ANSWER
            writer.write(json_answer(status, b"[]" if request.method == "GET" else body))
            await writer.drain()


scripted = server_fixture(ScriptedServer)


def _client(url: str) -> ConversationsClient:
    return ConversationsClient(
        ClientConfig(base_url=url, api_key="k", backoff_initial=0.001, rate_limit_patience=0)
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_post_answered_5xx_is_not_resent(scripted: tuple[ScriptedServer, str], status: int):
    server, url = scripted
    server.script = [status]

    async def start() -> None:
        async with _client(url) as client:
            await client.start_conversation({"model": "m", "inputs": "hi"})

    with pytest.raises(OutcomeUnknown) as caught:
        asyncio.run(start())
    assert caught.value.status == status
    assert "may have been applied" in str(caught.value)
    assert server.requests == Counter({("POST", status): 1})


def test_a_stream_answered_5xx_before_it_starts_is_not_resent(
    scripted: tuple[ScriptedServer, str],
) -> None:
    server, url = scripted
    server.script = [502]

    async def stream() -> None:
        async with _client(url) as client:
            async for _ in client.stream_start({"model": "m", "inputs": "hi"}):
                pass

    with pytest.raises(OutcomeUnknown):
        asyncio.run(stream())
    assert server.requests == Counter({("POST", 502): 1})


def test_a_post_refused_with_429_and_a_get_answered_5xx_are_retried(
    scripted: tuple[ScriptedServer, str],
) -> None:
    server, url = scripted
    server.script = [429, 200, 502, 503]

    async def calls() -> tuple[dict, list]:
        async with _client(url) as client:
            started = await client.start_conversation({"model": "m", "inputs": "hi"})
            return started, await client.list_conversations()

    started, listed = asyncio.run(calls())
    assert (started["conversation_id"], listed) == ("conv_1", [])
    assert server.requests == Counter(
        {("POST", 429): 1, ("POST", 200): 1, ("GET", 502): 1, ("GET", 503): 1, ("GET", 200): 1}
    )

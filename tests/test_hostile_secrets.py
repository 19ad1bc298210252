"""A server that echoes the key back, in any letter case: no error text or repr shows it."""

import asyncio
import socket
from collections import Counter

import pytest
from hostile import json_answer, read_request, server_fixture

from extract.client import ClientConfig, ConversationsClient
from extract.errors import ApiError, ApiKeyRejected, RequestRejected, RetriesExhausted, Unreachable

KEY = "sk-Echo-Me-9f3B2c"


class Echo:
    """Answers ``/v1/conversations/<status>`` with that status, echoing the bearer token."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            status = int(request.path.rsplit("/", 1)[1])
            self.requests[request.path] += 1
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            body = f'{{"message":"bad token {token.upper()} / {token.lower()} / {token}"}}'
            writer.write(json_answer(status, body.encode()))
            await writer.drain()


echo = server_fixture(Echo)


def _shown(error: ApiError) -> str:
    return f"{error} {error!r} {error.args!r} {getattr(error, 'detail', '')!r}"


@pytest.mark.parametrize(
    ("status", "kind"), [(400, RequestRejected), (503, RetriesExhausted), (401, ApiKeyRejected)]
)
def test_an_echoed_key_never_shows(
    echo: tuple[Echo, str], status: int, kind: type[ApiError]
) -> None:
    server, url = echo
    config = ClientConfig(base_url=url, api_key=KEY, max_retries=1, backoff_initial=0.001)

    async def call() -> ApiError:
        async with ConversationsClient(config) as client:
            with pytest.raises(kind) as caught:
                await client.get_conversation(str(status))
        return caught.value

    shown = _shown(asyncio.run(call()))
    for variant in (KEY, KEY.upper(), KEY.lower()):
        assert variant not in shown
    expected_requests = 2 if status == 503 else 1
    assert server.requests == {f"/v1/conversations/{status}": expected_requests}


def test_credentials_in_the_base_url_never_show() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://someone:Pass-Word-77@127.0.0.1:{port}/?token=tok-Secret-42"
    config = ClientConfig(base_url=base_url, api_key=KEY)

    async def call() -> Unreachable:
        async with ConversationsClient(config) as client:
            with pytest.raises(Unreachable) as caught:
                await client.list_conversations()
        return caught.value

    error = asyncio.run(call())
    shown = f"{_shown(error)} {config!r} {ConversationsClient(config)!r} {config.origin}"
    assert f"cannot reach http://127.0.0.1:{port}/v1/conversations: " in str(error)
    for secret in ("someone", "Pass-Word-77", "tok-Secret-42", KEY):
        assert secret not in shown

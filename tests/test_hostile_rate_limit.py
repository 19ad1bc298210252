"""Servers that limit the rate: one pace learned for every worker, and their headers honoured."""

import asyncio
import time
from collections import Counter
from email.utils import formatdate

import pytest
from hostile import json_answer, read_request, server_fixture, serving

from extract.client import ClientConfig, ConversationsClient
from extract.errors import RetriesExhausted

LIMIT_RPS = 20
REQUESTS = 120
LIMITED = b'{"message":"Requests rate limit exceeded"}'


class WindowLimiter:
    """At most LIMIT_RPS answers per one-second window; the rest are 429s without Retry-After."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.window = 0
        self.used = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            window = int(time.monotonic())
            if window != self.window:
                self.window, self.used = window, 0
            self.used += 1
            status = 200 if self.used <= LIMIT_RPS else 429
            self.statuses[status] += 1
            writer.write(json_answer(status, b"{}" if status == 200 else LIMITED))
            await writer.drain()


limiter = server_fixture(WindowLimiter)


def test_one_pace_is_learned_for_every_worker(limiter: tuple[WindowLimiter, str]) -> None:
    server, url = limiter
    config = ClientConfig(base_url=url, api_key="sk-rate", concurrency=16)

    async def fetch_all() -> ConversationsClient:
        async with ConversationsClient(config) as client:
            await asyncio.gather(*(client.get_conversation(f"c{i}") for i in range(REQUESTS)))
        return client

    client = asyncio.run(fetch_all())
    assert server.statuses[200] == REQUESTS
    assert client.stats.statuses == server.statuses
    assert client.stats.rate_limited == server.statuses[429]
    # Backoff alone, 16 workers each on its own, gets most requests answered 429.
    assert server.statuses[429] < 0.25 * REQUESTS
    assert client.stats.pace_rps is not None
    assert client.stats.pace_rps < 2 * LIMIT_RPS


class AlwaysLimited:
    """Every request is a 429 without Retry-After."""

    def __init__(self) -> None:
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            self.requests += 1
            writer.write(json_answer(429, LIMITED))
            await writer.drain()


always_limited = server_fixture(AlwaysLimited)


def test_a_429_is_retried_past_max_retries_for_the_patience(
    always_limited: tuple[AlwaysLimited, str],
) -> None:
    server, url = always_limited
    config = ClientConfig(
        base_url=url,
        api_key="sk-rate",
        max_retries=0,
        rate_limit_patience=1.0,
        backoff_initial=0.05,
        backoff_max=0.1,
    )

    async def fetch() -> RetriesExhausted:
        async with ConversationsClient(config) as client:
            with pytest.raises(RetriesExhausted) as caught:
                await client.get_conversation("c1")
        return caught.value

    error = asyncio.run(fetch())
    assert server.requests > 1
    assert str(error) == (
        f"get: HTTP 429: gave up after {server.requests} attempts:"
        " HTTP 429: Requests rate limit exceeded"
    )


class ClosedUntil:
    """Announces a closed window on its first answer; any request before it reopens is a 429.

    ``announce`` gives the headers of that first answer for the reopening time (epoch seconds).
    """

    def __init__(self, first_status: int, announce: dict[str, str], reopens_in: float) -> None:
        self.first_status = first_status
        self.announce = announce
        self.reopens_in = reopens_in
        self.reopens_at = 0.0
        self.statuses: Counter[int] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            if not self.statuses:
                self.reopens_at = time.time() + self.reopens_in
                status, headers = self.first_status, self.announce
            else:
                status, headers = (429 if time.time() < self.reopens_at else 200), {}
            self.statuses[status] += 1
            writer.write(json_answer(status, b"{}" if status == 200 else LIMITED, headers))
            await writer.drain()


def _sequential_gets(url: str, count: int) -> ConversationsClient:
    # Millisecond backoff and no patience: only waiting as the server said gets through.
    config = ClientConfig(
        base_url=url, api_key="sk-rate", max_retries=3, backoff_initial=0.001, rate_limit_patience=0
    )

    async def fetch() -> ConversationsClient:
        async with ConversationsClient(config) as client:
            for i in range(count):
                await client.get_conversation(f"c{i}")
        return client

    return asyncio.run(fetch())


def test_retry_after_as_an_http_date_is_honoured() -> None:
    reopen = time.time() + 2
    server = ClosedUntil(429, {"retry-after": formatdate(reopen, usegmt=True)}, 1.0)
    with serving(server.handle) as url:
        client = _sequential_gets(url, 1)
    assert server.statuses == {429: 1, 200: 1}
    assert client.stats.retries == 1


def test_x_ratelimit_remaining_zero_holds_every_request_until_the_reset() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
    server = ClosedUntil(200, headers, 0.9)
    with serving(server.handle) as url:
        client = _sequential_gets(url, 4)
    assert server.statuses == {200: 4}
    assert client.stats.retries == 0

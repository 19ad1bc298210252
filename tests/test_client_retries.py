"""Retries, limits and timeouts against a misbehaving emulator: what is retried and how long."""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from extract.client import ClientConfig, ConversationsClient
from extract.errors import OutcomeUnknown, RetriesExhausted, StreamCut, Unreachable
from extract.events import StreamEvent
from extract.retry_policy import RETRYABLE_STATUSES

MODEL = "mistral-medium-latest"
# The emulator, like the API, wants a bearer token even when it checks no particular key.
ANY_KEY = "sk-emulator-any"


def _config(emu: Any, **knobs: Any) -> ClientConfig:
    """A client config for ``emu`` with millisecond backoff unless a test says otherwise."""
    knobs = {"backoff_initial": 0.001, "backoff_max": 0.01, **knobs}
    return ClientConfig(base_url=emu.url, api_key=emu.config.api_key or ANY_KEY, **knobs)


def _ids(emu: Any) -> list[str]:
    return [c["id"] for c in emu.store.conversations_newest_first()]


def test_injected_faults_are_retried_counted_and_logged_without_the_key(
    make_emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-log-watch-4e1d8a"
    emu = make_emulator(conversations=30, seed=3, fault_rate=0.3, api_key=key)
    ids = _ids(emu)
    caplog.set_level(logging.DEBUG)

    async def fetch_all() -> tuple[list[dict], ConversationsClient]:
        async with ConversationsClient(_config(emu, max_retries=12)) as client:
            histories = await asyncio.gather(*(client.get_history(cid) for cid in ids))
        return histories, client

    histories, client = asyncio.run(fetch_all())
    assert [h["conversation_id"] for h in histories] == ids
    stats = client.stats
    failures = sum(n for status, n in stats.statuses.items() if status != 200)
    assert stats.statuses[200] == len(ids)
    assert failures > 0
    assert set(stats.statuses) <= RETRYABLE_STATUSES | {200}
    assert stats.requests == len(ids) + failures
    assert stats.retries == failures
    assert emu.store.request_counts["history"] == len(ids)
    assert sum(emu.store.rejected_counts.values()) == failures
    retry_lines = [r.getMessage() for r in caplog.records if "retrying after" in r.getMessage()]
    assert len(retry_lines) == failures
    assert key not in caplog.text


def test_persistent_faults_exhaust_the_retry_budget(make_emulator: Any) -> None:
    emu = make_emulator(conversations=2, fault_rate=1.0)
    cid = _ids(emu)[0]

    async def fetch() -> ConversationsClient:
        # Faults include 429s, retried for rate_limit_patience seconds in all: none here.
        async with ConversationsClient(
            _config(emu, max_retries=3, rate_limit_patience=0)
        ) as client:
            with pytest.raises(RetriesExhausted) as caught:
                await client.get_conversation(cid)
            assert caught.value.status in RETRYABLE_STATUSES
            assert caught.value.operation == "get"
            assert "gave up after 4 attempts" in caught.value.message
        return client

    client = asyncio.run(fetch())
    assert (client.stats.requests, client.stats.retries) == (4, 3)


def test_rate_limited_requests_wait_for_retry_after(make_emulator: Any) -> None:
    emu = make_emulator(conversations=12, rps=4)
    ids = _ids(emu)

    async def fetch_all() -> ConversationsClient:
        # Millisecond backoff alone would give up within ~0.1 s; only Retry-After gets through.
        config = _config(emu, max_retries=6, rate_limit_patience=0)
        async with ConversationsClient(config) as client:
            await asyncio.gather(*(client.get_conversation(cid) for cid in ids))
        return client

    client = asyncio.run(fetch_all())
    assert client.stats.statuses[200] == len(ids)
    assert client.stats.statuses[429] > 0
    assert client.stats.retries == client.stats.statuses[429]
    assert emu.store.request_counts["get"] == len(ids)
    assert emu.store.rejected_counts[429] == client.stats.statuses[429]


def test_the_client_rps_limit_spaces_requests_and_avoids_429(make_emulator: Any) -> None:
    emu = make_emulator(conversations=10, rps=10)
    ids = _ids(emu)

    async def fetch_all() -> ConversationsClient:
        async with ConversationsClient(_config(emu, rps=8)) as client:
            await asyncio.gather(*(client.get_conversation(cid) for cid in ids))
        return client

    client = asyncio.run(fetch_all())
    assert client.stats.statuses == {200: len(ids)}
    assert emu.store.rejected_counts == {}
    assert emu.store.request_counts["get"] == len(ids)
    assert client.stats.pace_rps == 8


class _InFlightServer:
    """Answers `{}` after a pause, and keeps the most requests it ever had open at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most_open = 0
        self.answered = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            await asyncio.sleep(0.05)
            self.open -= 1
            self.answered += 1
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()


async def _serve(server: _InFlightServer) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    async with listener:
        yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize("concurrency", [2, 8])
def test_concurrency_bounds_requests_in_flight(concurrency: int) -> None:
    server = _InFlightServer()

    async def fetch_all() -> None:
        async for url in _serve(server):
            config = ClientConfig(base_url=url, api_key=ANY_KEY, concurrency=concurrency)
            async with ConversationsClient(config) as client:
                await asyncio.gather(*(client.get_conversation(f"c{i}") for i in range(16)))

    asyncio.run(fetch_all())
    assert server.answered == 16
    assert server.most_open == concurrency


def test_a_slow_server_times_out_and_is_retried(make_emulator: Any) -> None:
    emu = make_emulator(conversations=2, latency_ms=400)
    cid = _ids(emu)[0]

    async def fetch() -> ConversationsClient:
        async with ConversationsClient(_config(emu, read_timeout=0.1, max_retries=1)) as client:
            with pytest.raises(RetriesExhausted) as caught:
                await client.get_conversation(cid)
            assert caught.value.status is None
            assert "Timeout" in caught.value.message
        return client

    client = asyncio.run(fetch())
    assert (client.stats.requests, client.stats.retries, client.stats.transport_errors) == (2, 1, 2)


def test_a_refused_first_connection_fails_at_once_naming_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ClientConfig(
        base_url=f"http://127.0.0.1:{port}",
        api_key="sk-never-shown",
        max_retries=2,
        backoff_initial=0.001,
    )

    async def fetch() -> ConversationsClient:
        async with ConversationsClient(config) as client:
            with pytest.raises(Unreachable) as caught:
                await client.list_conversations()
            assert caught.value.status is None
            assert f"cannot reach http://127.0.0.1:{port}/v1/conversations: " in str(caught.value)
            assert "sk-never-shown" not in str(caught.value) + repr(caught.value)
        return client

    client = asyncio.run(fetch())
    assert (client.stats.requests, client.stats.retries, client.stats.transport_errors) == (1, 0, 1)


def test_streams_get_through_refusals_and_never_resend_after_a_5xx(make_emulator: Any) -> None:
    emu = make_emulator(conversations=2, seed=5, fault_rate=0.5)

    async def stream() -> tuple[list[list[StreamEvent] | OutcomeUnknown], ConversationsClient]:
        runs: list[list[StreamEvent] | OutcomeUnknown] = []
        async with ConversationsClient(_config(emu, max_retries=15)) as client:
            for i in range(12):
                try:
                    runs.append(
                        [
                            e
                            async for e in client.stream_start(
                                {"inputs": f"turn {i}", "model": MODEL}
                            )
                        ]
                    )
                except OutcomeUnknown as unknown:
                    runs.append(unknown)
        return runs, client

    runs, client = asyncio.run(stream())
    completed = [(i, run) for i, run in enumerate(runs) if isinstance(run, list)]
    unknown = [run for run in runs if isinstance(run, OutcomeUnknown)]
    for i, events in completed:
        assert events[-1].type == "conversation.response.done"
        text = "".join(e.data["content"] for e in events if e.type == "message.output.delta")
        assert text == emu.store.reply_text(f"turn {i}")
    # The emulator's faults come before any side effect: 429s were retried, 5xx were not.
    assert completed and unknown
    assert all(run.status in {500, 502, 503} for run in unknown)
    assert client.stats.retries == client.stats.statuses[429]
    assert client.stats.requests == 12 + client.stats.retries
    assert emu.store.request_counts["start_stream"] == len(completed)


def test_a_cut_stream_raises_stream_cut_with_the_events_it_yielded(make_emulator: Any) -> None:
    emu = make_emulator(conversations=2, stream_cut_rate=1.0)

    async def stream() -> tuple[list[StreamEvent], StreamCut, ConversationsClient]:
        yielded: list[StreamEvent] = []
        async with ConversationsClient(_config(emu)) as client:
            try:
                async for event in client.stream_start({"inputs": "cut me off", "model": MODEL}):
                    yielded.append(event)
            except StreamCut as cut:
                return yielded, cut, client
        raise AssertionError("the stream was not cut")

    yielded, cut, client = asyncio.run(stream())
    assert cut.events == yielded
    assert cut.operation == "start_stream"
    assert all(e.type != "conversation.response.done" for e in yielded)
    assert (client.stats.requests, client.stats.retries) == (1, 0)

"""SSE reading on raw bytes and a raw socket: every event typed and kept, cuts detected."""

import asyncio
from contextlib import AbstractContextManager

import pytest
from hostile import read_request, response_head, serving

from extract.client import ClientConfig, ConversationsClient
from extract.errors import ApiError, StreamCut
from extract.events import StreamEvent

COMPLETE = (
    b"event: conversation.response.started\n"
    b'data: {"type":"conversation.response.started","conversation_id":"conv_1"}\n\n'
    b": a keep-alive comment the reader must skip\n\n"
    b"event: message.output.delta\n"
    b'data: {"type":"message.output.delta","content":"Hel","output_index":0}\n\n'
    b"event: brand.new.event\n"
    b'data: {"type":"brand.new.event","surprise":[1,2]}\n\n'
    b'data: {"type":"message.output.delta","content":"lo"}\n\n'
    b"event: odd.payload\n"
    b"data: not json at all\n\n"
    b"event: conversation.response.done\n"
    b'data: {"type":"conversation.response.done","usage":{"total_tokens":3}}\n\n'
)


def _answering(head: bytes, body: bytes) -> AbstractContextManager[str]:
    """A loopback server answering every request with ``head`` + ``body``, then closing."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head + body)
        await writer.drain()
        writer.close()

    return serving(answer)


def _events_of(raw: bytes) -> tuple[list[StreamEvent], StreamCut | None]:
    """Every event read from ``raw`` served as an SSE body, and the StreamCut if one was raised."""
    head = response_head(200, {"content-type": "text/event-stream", "connection": "close"})

    async def collect(url: str) -> tuple[list[StreamEvent], StreamCut | None]:
        seen: list[StreamEvent] = []
        async with ConversationsClient(ClientConfig(base_url=url, api_key="sk-any")) as client:
            try:
                async for event in client.stream_start({"inputs": "hi"}):
                    seen.append(event)
            except StreamCut as cut:
                return seen, cut
        return seen, None

    with _answering(head, raw) as url:
        return asyncio.run(collect(url))


def test_every_event_is_typed_and_kept_including_unknown_types() -> None:
    events, cut = _events_of(COMPLETE)
    assert cut is None
    assert [e.type for e in events] == [
        "conversation.response.started",
        "message.output.delta",
        "brand.new.event",
        "message.output.delta",
        "odd.payload",
        "conversation.response.done",
    ]
    assert events[0].data["conversation_id"] == "conv_1"
    assert events[2].data == {"type": "brand.new.event", "surprise": [1, 2]}
    assert events[2].raw == '{"type":"brand.new.event","surprise":[1,2]}'
    assert events[4].data == {}
    assert events[4].raw == "not json at all"
    assert events[5].data["usage"] == {"total_tokens": 3}
    assert all(e.received_at.tzinfo is not None for e in events)
    assert all(e.elapsed_ms >= 0 for e in events)
    assert [e.elapsed_ms for e in events] == sorted(e.elapsed_ms for e in events)


def test_an_error_event_also_ends_a_stream_cleanly() -> None:
    raw = (
        b"event: conversation.response.started\ndata: {}\n\n"
        b"event: conversation.response.error\n"
        b'data: {"type":"conversation.response.error","message":"boom","code":3000}\n\n'
    )
    events, cut = _events_of(raw)
    assert cut is None
    assert events[-1].type == "conversation.response.error"
    assert events[-1].data["message"] == "boom"


def test_a_stream_without_its_terminal_event_raises_stream_cut_after_yielding() -> None:
    truncated = COMPLETE[: COMPLETE.index(b"event: conversation.response.done")]
    events, cut = _events_of(truncated)
    assert cut is not None
    assert len(events) == 5
    assert cut.events == events
    assert cut.operation == "start_stream"
    assert "5 events" in repr(cut)


def test_a_json_body_where_a_stream_was_expected_is_an_api_error() -> None:
    body = b'{"object": "conversation.response"}'
    head = response_head(200, {"content-type": "application/json", "content-length": "35"})

    async def read(url: str) -> None:
        async with ConversationsClient(ClientConfig(base_url=url, api_key="sk-any")) as client:
            async for _ in client.stream_append("conv_1", {"inputs": "hi"}):
                pass

    with (
        _answering(head, body) as url,
        pytest.raises(ApiError, match="append_stream: HTTP 200: Expected response header"),
    ):
        asyncio.run(read(url))


def test_a_connection_dropped_mid_stream_raises_stream_cut_with_what_arrived() -> None:
    first = b'event: conversation.response.started\ndata: {"conversation_id":"conv_x"}\n\n'

    async def drop_after_one_event(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        # A server that dies mid-answer: one chunk of a chunked SSE body, then a reset.
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(first), first)
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    async def stream() -> tuple[list[StreamEvent], StreamCut, ConversationsClient]:
        server = await asyncio.start_server(drop_after_one_event, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = ClientConfig(base_url=f"http://127.0.0.1:{port}", api_key="sk-any")
        seen: list[StreamEvent] = []
        async with server, ConversationsClient(config) as client:
            with pytest.raises(StreamCut) as caught:
                async for event in client.stream_start({"inputs": "hi"}):
                    seen.append(event)
        return seen, caught.value, client

    seen, cut, client = asyncio.run(stream())
    assert [e.type for e in seen] == ["conversation.response.started"]
    assert cut.events == seen
    assert "stream broke after 1 events: the connection closed before the body" in cut.message
    assert (client.stats.requests, client.stats.retries) == (1, 0)

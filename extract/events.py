"""Server-sent events of a streamed conversation, typed and timed, with nothing dropped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import orjson
from httpx_sse import ServerSentEvent

from extract.errors import ApiError, BodyTooLarge, StreamCut, StreamTimedOut
from extract.event_wait import EventWait
from extract.sse import EventTooLarge, SSEDecoder
from extract.stream_event import StreamEvent

TERMINAL_EVENT_TYPES = frozenset({"conversation.response.done", "conversation.response.error"})
# What a stream's connection raises when it drops or its body is malformed mid-answer.
_STREAM_BROKEN = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)

__all__ = ["TERMINAL_EVENT_TYPES", "StreamEvent", "StreamLimits", "event_from_sse", "read_events"]


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """How long a stream may go without an event, how long in all, and how big one event may be."""

    idle_timeout: float = 300.0
    total_timeout: float = 1800.0
    max_event_bytes: int = 512 * 2**20


def event_from_sse(sse: ServerSentEvent, sent_at: float) -> StreamEvent:
    """Type and parse one decoded SSE; unknown types and non-object data are kept, not dropped."""
    try:
        parsed = orjson.loads(sse.data) if sse.data else {}
    except orjson.JSONDecodeError:
        parsed = {}
    data = parsed if isinstance(parsed, dict) else {"value": parsed}
    event_type = sse.event
    # "message" means the block had no `event:` line; data.type then names it.
    if event_type == "message" and isinstance(data.get("type"), str):
        event_type = data["type"]
    return StreamEvent(
        type=event_type,
        data=data,
        raw=sse.data,
        received_at=datetime.now(UTC),
        elapsed_ms=(time.perf_counter() - sent_at) * 1000.0,
    )


async def _decoded_sse(
    response: aiohttp.ClientResponse, max_event_bytes: int
) -> AsyncIterator[ServerSentEvent]:
    """Every SSE of the body, each bounded in size; comments and keep-alives yield nothing."""
    decoder = SSEDecoder(max_event_bytes)
    async for chunk in response.content.iter_any():
        for sse in decoder.feed(chunk):
            yield sse


async def read_events(
    response: aiohttp.ClientResponse,
    sent_at: float,
    operation: str,
    limits: StreamLimits | None = None,
) -> AsyncIterator[StreamEvent]:
    """Yield every event of an open SSE response; raise StreamCut if it stops before the end.

    ``sent_at`` is the ``time.perf_counter()`` reading taken when the request was sent. Each
    wait for the next event is bounded by ``limits.idle_timeout`` and by what remains of
    ``limits.total_timeout`` (StreamTimedOut); an event over ``max_event_bytes`` is BodyTooLarge.
    """
    limits = limits or StreamLimits()
    content_type = response.headers.get("content-type", "")
    if "text/event-stream" not in content_type.partition(";")[0]:
        message = (
            "Expected response header Content-Type to contain 'text/event-stream', "
            f"got {content_type!r}"
        )
        raise ApiError(response.status, message, operation)
    events: list[StreamEvent] = []
    finished = False
    left = sent_at + limits.total_timeout - time.perf_counter()
    source = _decoded_sse(response, limits.max_event_bytes)
    wait = EventWait(limits.idle_timeout, left)
    try:
        while True:
            try:
                sse = await wait.bounded(anext(source))
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                if wait.total_ran_out:
                    message = f"stream exceeded {limits.total_timeout:g} s (stream_timeout)"
                else:
                    message = f"no event for {limits.idle_timeout:g} s (stream_idle_timeout)"
                raise StreamTimedOut(events, operation, message) from exc
            event = event_from_sse(sse, sent_at)
            events.append(event)
            finished = finished or event.type in TERMINAL_EVENT_TYPES
            yield event
    except EventTooLarge as exc:
        message = (
            f"an event exceeds the limit of {limits.max_event_bytes:,} bytes (max_body_bytes):"
            f" stopped reading at {exc.size:,}"
        )
        raise BodyTooLarge(response.status, message, operation) from exc
    except _STREAM_BROKEN as exc:
        if not finished:
            message = f"stream broke after {len(events)} events: {_broken(exc)}"
            raise StreamCut(events, operation, message) from exc
    finally:
        wait.close()
        await source.aclose()
    if not finished:
        raise StreamCut(events, operation)


def _broken(exc: Exception) -> str:
    """What broke a stream, in words: aiohttp's payload errors carry its parser's status 400."""
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the connection closed before the body was complete (ClientPayloadError)"
    return f"{type(exc).__name__}: {exc}"

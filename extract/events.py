"""Server-sent events of a streamed conversation, typed and timed, with nothing dropped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource, ServerSentEvent, SSEError

from extract.errors import ApiError, StreamCut

TERMINAL_EVENT_TYPES = frozenset({"conversation.response.done", "conversation.response.error"})


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One SSE event: its type, parsed JSON data, the raw data text, and when it arrived."""

    type: str
    data: dict[str, Any]
    raw: str
    received_at: datetime
    elapsed_ms: float


def event_from_sse(sse: ServerSentEvent, sent_at: float) -> StreamEvent:
    """Type and parse one decoded SSE; unknown types and non-object data are kept, not dropped."""
    try:
        parsed = orjson.loads(sse.data) if sse.data else {}
    except orjson.JSONDecodeError:
        parsed = {}
    data = parsed if isinstance(parsed, dict) else {"value": parsed}
    event_type = sse.event
    # httpx-sse reports "message" when the block had no `event:` line; data.type then names it.
    if event_type == "message" and isinstance(data.get("type"), str):
        event_type = data["type"]
    return StreamEvent(
        type=event_type,
        data=data,
        raw=sse.data,
        received_at=datetime.now(UTC),
        elapsed_ms=(time.perf_counter() - sent_at) * 1000.0,
    )


async def read_events(
    response: httpx.Response, sent_at: float, operation: str
) -> AsyncIterator[StreamEvent]:
    """Yield every event of an open SSE response; raise StreamCut if it stops before the end.

    ``sent_at`` is the ``time.perf_counter()`` reading taken when the request was sent.
    """
    events: list[StreamEvent] = []
    finished = False
    try:
        async for sse in EventSource(response).aiter_sse():
            event = event_from_sse(sse, sent_at)
            events.append(event)
            finished = finished or event.type in TERMINAL_EVENT_TYPES
            yield event
    except SSEError as exc:
        raise ApiError(response.status_code, str(exc), operation) from exc
    except httpx.TransportError as exc:
        if not finished:
            message = f"stream broke after {len(events)} events: {type(exc).__name__}: {exc}"
            raise StreamCut(events, operation, message) from exc
    if not finished:
        raise StreamCut(events, operation)

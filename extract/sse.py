"""Server-sent events decoded from raw chunks, with one event never allowed past a size cap.

httpx-sse reads whole lines first: a line that never ends grew the process without bound. This
decoder counts the bytes of the event being assembled (line fragments included) and stops at
``max_event_bytes``.
"""

from __future__ import annotations

from collections.abc import Iterator

from httpx_sse import ServerSentEvent


class EventTooLarge(Exception):
    """One SSE event (or one line of it) reached the size cap; ``size`` is what was buffered."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class SSEDecoder:
    """Feed it byte chunks; it yields each complete event (comments and empty blocks skipped)."""

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes
        self._partial = b""
        self._pending_cr = False
        self._event_bytes = 0
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> Iterator[ServerSentEvent]:
        """The events completed by ``chunk``; raises EventTooLarge at the cap."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith(b"\r")
        buffer = self._partial + chunk
        lines = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) + self._event_bytes > self._max:
            raise EventTooLarge(len(self._partial) + self._event_bytes)
        for line in lines:
            event = self._line(line)
            if event is not None:
                yield event

    def _line(self, line: bytes) -> ServerSentEvent | None:
        """Apply one complete line; a blank line returns the event it ends, if any."""
        if not line:
            return self._dispatch()
        self._event_bytes += len(line) + 1
        if self._event_bytes > self._max:
            raise EventTooLarge(self._event_bytes)
        if line.startswith(b":"):
            return None
        name, _, value = line.decode("utf-8", "replace").partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        """The assembled event, and a clean slate for the next."""
        event = None
        if self._data or self._event or self._id is not None or self._retry is not None:
            data = "\n".join(self._data)
            event = ServerSentEvent(self._event or "message", data, self._id or "", self._retry)
        self._event, self._data, self._retry, self._event_bytes = "", [], None, 0
        return event

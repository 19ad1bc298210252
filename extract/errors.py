"""Errors raised by the API client, so callers can tell a bad key from a bad row from an outage.

Hierarchy::

    ApiError(status, message, operation)       every failure; raised as-is for a non-JSON
                                               success body or an unexpected 5xx like 501
     ├── ApiKeyRejected                        401: the key is missing, wrong or revoked
     ├── NotFound                              404: no such conversation
     ├── Conflict                              409: concurrent requests on one conversation
     ├── RequestRejected(detail)               422 and every other non-retried 4xx
     ├── RetriesExhausted                      429/5xx/transport errors outlasted max_retries
     ├── Unreachable                           the first request could not connect (DNS, TLS,
     │                                         refused): one error, not a retry loop
     ├── BodyTooLarge                          a body or SSE event over max_body_bytes
     ├── OutcomeUnknown                        a POST was sent but no answer came: it may have
     │    │                                    been applied, so it is never resent blindly
     │    └── RequestTimedOut                  ... because request_timeout ran out
     └── StreamCut(events)                     a stream ended before response.done / .error
          └── StreamTimedOut                   ... because no event came in stream_idle_timeout,
                                               or the stream outlasted stream_timeout

``status`` is the HTTP status (``None`` when the last failure was a transport error). No
message, str or repr ever contains the API key: the client scrubs server text before raising.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from extract.stream_event import StreamEvent


class ApiError(Exception):
    """Base of every error the client raises: which operation failed, with what status and why."""

    def __init__(self, status: int | None, message: str, operation: str) -> None:
        self.status = status
        self.message = message
        self.operation = operation
        super().__init__(status, message, operation)

    def __str__(self) -> str:
        """``operation: HTTP status: message``, one line."""
        status = "transport error" if self.status is None else f"HTTP {self.status}"
        return f"{self.operation}: {status}: {self.message}"

    def __repr__(self) -> str:
        """Class and fields, for tracebacks."""
        return f"{type(self).__name__}({self.status!r}, {self.message!r}, {self.operation!r})"


class ApiKeyRejected(ApiError):
    """401: the API refused the key; the message names the host and the variable, never the key."""


class NotFound(ApiError):
    """404: the conversation (or path) does not exist."""


class Conflict(ApiError):
    """409: another request is updating the same conversation; a thread's turns must be serial."""


class RequestRejected(ApiError):
    """422 or another 4xx that retrying cannot fix; ``detail`` holds the server's explanation."""

    def __init__(
        self, status: int | None, message: str, operation: str, detail: Any = None
    ) -> None:
        super().__init__(status, message, operation)
        self.detail = detail
        self.args = (status, message, operation, detail)


class RetriesExhausted(ApiError):
    """A retryable failure (429, 5xx, timeout, connection error) persisted past max_retries."""


class Unreachable(ApiError):
    """The client's first request could not connect: a wrong host, TLS failure or refused port."""


class BodyTooLarge(ApiError):
    """An answer (or one SSE event) was bigger than max_body_bytes; it was not read whole."""


class OutcomeUnknown(ApiError):
    """A POST reached the wire but no answer came back: it may or may not have been applied.

    Never retried by the client: resending could start or append a turn twice.
    """


class RequestTimedOut(OutcomeUnknown):
    """A POST got no complete answer within request_timeout."""


class StreamCut(ApiError):
    """A stream stopped before its terminal event; ``events`` holds every event that did arrive."""

    def __init__(
        self,
        events: list[StreamEvent],
        operation: str = "stream",
        message: str = "stream ended without conversation.response.done or .error",
        status: int | None = 200,
    ) -> None:
        super().__init__(status, message, operation)
        self.events = events
        self.args = (events, operation, message, status)

    def __repr__(self) -> str:
        """The event count, not the events: a cut stream may have carried thousands."""
        return f"StreamCut(<{len(self.events)} events>, {self.operation!r}, {self.message!r})"


class StreamTimedOut(StreamCut):
    """A stream went silent past stream_idle_timeout or ran past stream_timeout."""


_MESSAGE_LIMIT = 500


def secret_pattern(secrets: list[str | None]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of ``secrets`` (None when there are none)."""
    present = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not present:
        return None
    return re.compile("|".join(re.escape(s) for s in present), re.IGNORECASE)


def scrubbed(text: str, pattern: re.Pattern[str] | None) -> str:
    """``text`` with every match of ``pattern`` (a key, in any letter case) masked."""
    return text if pattern is None else pattern.sub("***", text)


def describe_body(body: bytes, secret: str | None = None) -> tuple[str, Any]:
    """A one-line message and the structured detail of an error body, with ``secret`` masked."""
    if secret:
        # Servers echo keys back in other letter cases too (e.g. upper-cased in a message).
        body = re.sub(re.escape(secret.encode()), b"***", body, flags=re.IGNORECASE)
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        text = body.decode("utf-8", "replace").strip().replace("\n", " ")
        return text[:_MESSAGE_LIMIT] or "(empty body)", None
    detail = parsed.get("detail")
    if isinstance(detail, list):
        # FastAPI-style 422: a list of {"loc": [...], "msg": ..., "type": ...}.
        parts = [
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', item)}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        ]
        return "; ".join(parts)[:_MESSAGE_LIMIT], detail
    message = parsed.get("message", detail if detail is not None else parsed)
    text = message if isinstance(message, str) else orjson.dumps(message).decode()
    return text[:_MESSAGE_LIMIT], detail if detail is not None else parsed


def error_for_status(
    status: int, body: bytes, operation: str, base_url: str, secret: str | None
) -> ApiError:
    """Build the error a non-retried failure status stands for, with the key scrubbed out."""
    if status == 401:
        return ApiKeyRejected(
            status, f"API key rejected by {base_url}: check MISTRAL_API_KEY", operation
        )
    message, detail = describe_body(body, secret)
    if status == 404:
        if operation == "list":
            message += (
                f" (no conversation list under {base_url}: the base URL should look like"
                " https://api.mistral.ai, without /v1 or another path)"
            )
        return NotFound(status, message, operation)
    if status == 409:
        return Conflict(status, message, operation)
    if 400 <= status < 500:
        return RequestRejected(status, message, operation, detail)
    return ApiError(status, message, operation)

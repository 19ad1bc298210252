"""The emulator's response bodies: JSON with orjson, the API's error shapes, and the SSE stream."""

import asyncio
import secrets
from collections.abc import Awaitable

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

JSON_TYPE = "application/json"
SERVER_ERROR_MESSAGE = "Internal server error"
SERVER_ERROR_CODE = 3000
SERVER_ERROR = {
    "object": "Error",
    "message": SERVER_ERROR_MESSAGE,
    "type": "internal_server_error",
    "param": None,
    "code": SERVER_ERROR_CODE,
}


def json_response(payload: object, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response serialized with orjson."""
    return Response(orjson.dumps(payload), status, headers, JSON_TYPE)


def raw_json_response(body: bytes) -> Response:
    """A 200 JSON response from an already serialized body."""
    return Response(body, 200, None, JSON_TYPE)


def api_error(status: int, message: str, error_type: str) -> Response:
    """An error body as the API writes it: object, message, type, param, code."""
    payload = {
        "object": "error",
        "message": message,
        "type": error_type,
        "param": None,
        "code": 3000,
    }
    return json_response(payload, status)


def not_found(what: str) -> Response:
    """404 for an unknown conversation or entry."""
    return api_error(404, f"{what} not found", "invalid_request_error")


def conflict() -> Response:
    """409 when a completion is already running on the conversation."""
    message = "Conversation is being updated, concurrent requests are not supported"
    return api_error(409, message, "invalid_request_error")


def server_error() -> Response:
    """500 with the API's error body: a completion that failed."""
    return json_response(SERVER_ERROR, 500)


def validation_error(details: list[dict]) -> Response:
    """422 with an HTTPValidationError body."""
    return json_response({"detail": details}, 422)


def unauthorized_body() -> bytes:
    """The 401 body; a fresh request id each time, as the API sends."""
    return orjson.dumps({"message": "Unauthorized", "request_id": secrets.token_hex(16)})


# A gateway in front of the API answers 502 and 504 with HTML, not JSON.
GATEWAY_PAGES = {
    502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    504: b"<html><body><h1>504 Gateway Time-out</h1></body></html>",
}


def gateway_error(status: int) -> Response:
    """502 or 504 as the gateway in front of the API writes them."""
    return Response(GATEWAY_PAGES[status], status, None, "text/html")


async def dropped_connection(scope: Scope, receive: Receive, send: Send) -> None:
    """Start a JSON answer and never finish it: the server closes the connection mid-body."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", JSON_TYPE.encode()), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"object":"conv', "more_body": True})


class EventStreamResponse:
    """A text/event-stream answer: frames sent with `delay_s` between them.

    The last frame waits for `generated` (the turn being stored), so a client that read the
    whole stream finds the turn in the history. With `drop`, the connection is then closed
    without ending the stream, as a broken proxy does.
    """

    def __init__(
        self, frames: list[bytes], delay_s: float, generated: Awaitable, drop: bool = False
    ) -> None:
        self.frames = frames
        self.delay_s = delay_s
        self.generated = generated
        self.drop = drop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream over ASGI."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        *frames, last = self.frames
        if self.delay_s <= 0:
            frames = [b"".join(frames)]
        for position, frame in enumerate(frames):
            if position:
                await asyncio.sleep(self.delay_s)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await asyncio.shield(self.generated)
        await send({"type": "http.response.body", "body": last, "more_body": True})
        if not self.drop:
            await send({"type": "http.response.body", "body": b""})

"""A pure-ASGI wrapper for what comes before any operation: latency, auth, rate limit, faults.

Faults and rate limits are decided here, before the handler, so a request turned away had
no side effect and retrying it is safe, as with the real API.
"""

import asyncio
import hmac
import math
import random
import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.config import EmulatorConfig
from emulator.responses import GATEWAY_PAGES, SERVER_ERROR, unauthorized_body
from emulator.store import ConversationStore

_JSON_HEADERS = [(b"content-type", b"application/json")]
# The two 429 bodies the API sends: the gateway's, and the API's own error object.
RATE_LIMITED_BODIES = (
    orjson.dumps({"message": "Requests rate limit exceeded"}),
    orjson.dumps(
        {
            "object": "error",
            "message": "Rate limit exceeded",
            "type": "rate_limited",
            "param": None,
            "code": "1300",
        }
    ),
)
_FAULTS = (
    (429, _JSON_HEADERS, RATE_LIMITED_BODIES[1]),
    (500, [(b"content-type", b"application/json")], orjson.dumps(SERVER_ERROR)),
    (502, [(b"content-type", b"text/html")], GATEWAY_PAGES[502]),
    (
        503,
        [(b"content-type", b"application/json")],
        orjson.dumps({"object": "error", "message": "Service unavailable", "type": "unavailable"}),
    ),
)
_REQUESTS_PER_MINUTE = 60


class _TokenBucket:
    """Allows `rps` requests per second with bursts of up to one second's worth."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.stamp = time.monotonic()
        self.rate: float | None = None

    def wait_needed(self, rate: float) -> float:
        """0 if a request may pass now (and takes a token), else the seconds until one may."""
        now = time.monotonic()
        capacity = max(rate, 1.0)
        if rate != self.rate:
            self.rate, self.tokens = rate, capacity
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


def _bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            return token if scheme.lower() == b"bearer" and token else None
    return None


def rate_limit_headers(rps: float, wait_s: float, retry_after: bool) -> list[tuple[bytes, bytes]]:
    """A 429's headers: the X-RateLimit-* budget (per minute, none left) and Retry-After."""
    limit = str(max(1, round(rps * _REQUESTS_PER_MINUTE))).encode()
    headers = [
        *_JSON_HEADERS,
        (b"x-ratelimit-limit-req-minute", limit),
        (b"x-ratelimit-remaining-req-minute", b"0"),
    ]
    if retry_after:
        headers.append((b"retry-after", str(math.ceil(wait_s)).encode()))
    return headers


async def _send(send: Send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """Wraps the router: every HTTP request passes through here first."""

    def __init__(self, app: ASGIApp, config: EmulatorConfig, store: ConversationStore) -> None:
        self.app = app
        self.config = config
        self.store = store
        self.chance = random.Random(f"{config.seed}:faults")
        self.bucket = _TokenBucket()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Delay, then admit or turn the request away."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.config
        if config.latency_ms > 0:
            await asyncio.sleep(config.latency_ms / 1000)
        token = _bearer_token(scope)
        expected = config.api_key
        if token is None or (
            expected is not None and not hmac.compare_digest(token, expected.encode())
        ):
            self.store.record_rejection(401)
            await _send(send, 401, _JSON_HEADERS, unauthorized_body())
            return
        if config.rps:
            wait = self.bucket.wait_needed(config.rps)
            if wait > 0:
                self.store.record_rejection(429)
                headers = rate_limit_headers(config.rps, wait, config.rate_limit_retry_after)
                # Alternate the two shapes, the gateway's first, so a client meets both.
                body = RATE_LIMITED_BODIES[(self.store.rejected_counts[429] - 1) % 2]
                await _send(send, 429, headers, body)
                return
        if config.fault_rate > 0 and self.chance.random() < config.fault_rate:
            status, headers, body = self.chance.choice(_FAULTS)
            if status == 429:
                rps = config.rps or 1.0
                headers = rate_limit_headers(rps, 1.0, config.rate_limit_retry_after)
            self.store.record_rejection(status)
            await _send(send, status, headers, body)
            return
        await self.app(scope, receive, send)

"""The one async client for the ten Conversations API operations, used by export and replay.

One aiohttp connection pool serves both kinds of call, straight, without httpx's API over it
(CPU per JSON request: ~0.27 ms, against ~0.5 ms through httpx's API on the same pool and
~0.7 ms with httpx's own transport; streams, read by extract/events.py, likewise cost the replay
a quarter less CPU).
orjson for bodies, a semaphore bounding requests in flight, one pace for every request learned
from 429s (extract/pacer.py), and tenacity retrying 429/5xx/transport errors with full-jitter
backoff and Retry-After. Every answer is bounded in time (request_timeout; streams:
stream_idle_timeout and stream_timeout) and in size (max_body_bytes). A POST that may have
landed is never resent (OutcomeUnknown); a first request that cannot connect fails at once
(Unreachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import httpx
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from yarl import URL

from extract.errors import (
    ApiError,
    BodyTooLarge,
    OutcomeUnknown,
    RequestTimedOut,
    RetriesExhausted,
    Unreachable,
    describe_body,
    error_for_status,
    scrubbed,
    secret_pattern,
)
from extract.events import StreamEvent, StreamLimits, read_events
from extract.pacer import Pacer, RequestTokens
from extract.retry_policy import (
    RETRYABLE_ERRORS,
    RETRYABLE_STATUSES,
    TRANSPORT_ERRORS,
    Backoff,
    BackoffWait,
    RetryableStatus,
    parse_retry_after,
)
from extract.urls import redacted_url, url_secrets

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, repr=False)
class ClientConfig:
    """Where the API is, the key, and the limits, timeouts and retry budget of one client."""

    base_url: str
    api_key: str | None = None
    concurrency: int = 16
    rps: float | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    request_timeout: float = 120.0
    stream_idle_timeout: float = 300.0
    stream_timeout: float = 1800.0
    max_body_bytes: int = 512 * 2**20
    max_retries: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    rate_limit_patience: float = 120.0

    def __post_init__(self) -> None:
        """Fail at construction, with a one-line reason, on values the client cannot work with."""
        scheme = urlsplit(self.base_url).scheme
        if scheme not in ("http", "https"):
            shown = redacted_url(self.base_url)
            raise ValueError(f"base_url must start with http:// or https://, got {shown!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.rps is not None and self.rps <= 0:
            raise ValueError(f"rps must be positive or None, got {self.rps}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        positive = (
            "connect_timeout",
            "read_timeout",
            "request_timeout",
            "stream_idle_timeout",
            "stream_timeout",
            "max_body_bytes",
            "backoff_max",
            "retry_after_max",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("backoff_initial", "rate_limit_patience"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")

    def __repr__(self) -> str:
        """Every field, key masked and URL credentials dropped: configs end up in logs."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["api_key"] = None if self.api_key is None else "**********"
        shown["base_url"] = redacted_url(self.base_url)
        return "ClientConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the API, for messages that must not echo a path or key."""
        parts = urlsplit(redacted_url(self.base_url))
        return f"{parts.scheme}://{parts.netloc}"


@dataclass
class ClientStats:
    """Counts since the client opened: every attempt, every retry, and each status received.

    ``pace_rps`` is the pace learned from 429s (None: never limited, or the configured rps).
    """

    requests: int = 0
    retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    pacer: Pacer = field(default_factory=Pacer, repr=False)

    @property
    def pace_rps(self) -> float | None:
        """Requests per second every worker shares now; None while nothing slowed the run."""
        return self.pacer.rate

    @property
    def rate_limited(self) -> int:
        """How many answers were 429s."""
        return self.statuses[429]


@dataclass(frozen=True, slots=True)
class _OpenState:
    """The loop-bound parts of an open client: connection pool and in-flight slots."""

    session: aiohttp.ClientSession
    semaphore: asyncio.Semaphore


class ConversationsClient:
    """Async client for list/get/history/messages/start/append/restart and their streams."""

    def __init__(self, config: ClientConfig, tokens: RequestTokens | None = None) -> None:
        self.config = config
        self._pacer = Pacer(config.rps)
        # A rate shared with other processes: each request takes a token, then its paced slot.
        self._tokens = tokens
        self._stats = ClientStats(pacer=self._pacer)
        self._open: _OpenState | None = None
        # Sent without userinfo or query: the key goes as a bearer token (aiohttp refuses both),
        # and a query on the base would end up in the middle of every request's path.
        self._base_url = redacted_url(config.base_url).rstrip("/")
        self._secrets = secret_pattern([config.api_key, *url_secrets(config.base_url)])
        self._stream_limits = StreamLimits(
            config.stream_idle_timeout, config.stream_timeout, config.max_body_bytes
        )
        # A stream's reads are bounded per event (stream_idle_timeout), not per socket read, and
        # its whole length by stream_timeout, not request_timeout.
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=config.connect_timeout, sock_connect=config.connect_timeout
        )
        # Until one answer came back, a failure to connect is a wrong URL, not an outage.
        self._reached = False
        # Requests are built from these, not by client.build_request: merging base URL, headers,
        # cookies and params on every call was a measurable share of the CPU per request.
        common = {"User-Agent": "convo-etl"}
        if config.api_key is not None:
            common["Authorization"] = f"Bearer {config.api_key}"
        self._get_headers = {**common, "Accept": "application/json"}
        self._post_headers = {**self._get_headers, "Content-Type": "application/json"}
        self._stream_headers = {**self._post_headers, "Accept": "text/event-stream"}
        self._wait = BackoffWait(
            Backoff(config.backoff_initial, config.backoff_max, config.retry_after_max)
        )

    def __repr__(self) -> str:
        """The config, key masked."""
        return f"ConversationsClient({self.config!r})"

    @property
    def stats(self) -> ClientStats:
        """Live counters of requests, retries and statuses."""
        return self._stats

    async def __aenter__(self) -> Self:
        """Open the connection pool, slots and limiter on the running event loop."""
        config = self.config
        connector = aiohttp.TCPConnector(
            limit=config.concurrency,
            limit_per_host=config.concurrency,
            keepalive_timeout=30.0,
            ssl=_tls_context(),
        )
        # `total` bounds a JSON call from connect to last byte, however slowly the bytes come.
        timeout = aiohttp.ClientTimeout(
            total=config.request_timeout,
            connect=config.connect_timeout,
            sock_connect=config.connect_timeout,
            sock_read=config.read_timeout,
        )
        proxy, proxy_auth = _env_proxy(self._base_url)
        session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, proxy=proxy, proxy_auth=proxy_auth
        )
        self._open = _OpenState(session, asyncio.Semaphore(config.concurrency))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the aiohttp session and its connections."""
        if self._open is not None:
            await self._open.session.close()
            self._open = None

    async def list_conversations(
        self, page: int = 0, page_size: int = 100, metadata: Mapping[str, Any] | None = None
    ) -> list[dict]:
        """One page (0-based, newest first) of conversations; with ``metadata``, only those whose
        metadata contains it (the API's filter, a JSON object in the query)."""
        url = f"/v1/conversations?page={int(page)}&page_size={int(page_size)}"
        if metadata:
            url += "&metadata=" + quote(orjson.dumps(dict(metadata)).decode(), safe="")
        return await self._json("list", "GET", url)

    async def get_conversation(self, cid: str) -> dict:
        """One conversation's attributes."""
        return await self._json("get", "GET", _conversation_path(cid))

    async def get_history(self, cid: str) -> dict:
        """Every entry of a conversation, in append order (ConversationHistory JSON)."""
        return _decoded(await self.history_body(cid), "history")

    async def get_messages(self, cid: str) -> dict:
        """The message entries of a conversation (ConversationMessages JSON)."""
        return _decoded(await self.messages_body(cid), "messages")

    async def history_body(self, cid: str) -> bytes:
        """The history's JSON undecoded: the export decodes it off the event loop, in a batch."""
        return await self._body("history", "GET", _conversation_path(cid, "/history"))

    async def messages_body(self, cid: str) -> bytes:
        """The messages' JSON undecoded, for the same reason as ``history_body``."""
        return await self._body("messages", "GET", _conversation_path(cid, "/messages"))

    async def start_conversation(self, body: dict) -> dict:
        """Start a conversation and return the ConversationResponse JSON."""
        return await self._json("start", "POST", "/v1/conversations", _post_body(body, False))

    async def append_to_conversation(self, cid: str, body: dict) -> dict:
        """Append inputs to a conversation and return the ConversationResponse JSON."""
        path = _conversation_path(cid)
        return await self._json("append", "POST", path, _post_body(body, False))

    async def restart_conversation(self, cid: str, body: dict) -> dict:
        """Branch a new conversation from ``body["from_entry_id"]``; returns its response JSON."""
        path = _conversation_path(cid, "/restart")
        return await self._json("restart", "POST", path, _post_body(body, False))

    def stream_start(self, body: dict) -> AsyncIterator[StreamEvent]:
        """Start a conversation, streaming its events."""
        return self._stream("start_stream", "/v1/conversations", body)

    def stream_append(self, cid: str, body: dict) -> AsyncIterator[StreamEvent]:
        """Append to a conversation, streaming its events."""
        return self._stream("append_stream", _conversation_path(cid), body)

    def stream_restart(self, cid: str, body: dict) -> AsyncIterator[StreamEvent]:
        """Restart a conversation from an entry, streaming its events."""
        return self._stream("restart_stream", _conversation_path(cid, "/restart"), body)

    async def _json(
        self, operation: str, method: str, url: str, content: bytes | None = None
    ) -> Any:
        """Send one call with retries and return its decoded JSON body."""
        return _decoded(await self._body(operation, method, url, content), operation)

    async def _body(
        self, operation: str, method: str, url: str, content: bytes | None = None
    ) -> bytes:
        """Send one call straight over aiohttp, with retries, and return its body."""
        state = self._state()

        async def attempt() -> bytes:
            async with state.semaphore:
                sent_at = await self._paced()
                status, body, headers = await self._exchange(
                    state.session, operation, method, url, content
                )
            self._check_status(operation, method, status, body, headers, sent_at)
            return body

        return await self._retried(operation, attempt)

    async def _retried(self, operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, retried under the retry policy if it fails retryably.

        The first attempt runs outside tenacity, whose retry loop costs ~40 µs a call even when
        nothing fails (8% of a JSON call's CPU); a failure of it is the loop's first attempt."""
        try:
            return await attempt()
        except RETRYABLE_ERRORS as first:
            failure: BaseException | None = first
        retrying = self._retrying(operation)
        with self._give_up_as(operation, retrying):
            async for retry in retrying:
                with retry:
                    if failure is not None:
                        failed, failure = failure, None
                        raise failed
                    result = await attempt()
        return result

    async def _paced(self) -> float:
        """Wait for a shared token (if any), then for this request's slot in the learned pace;
        returns when it was sent."""
        if self._tokens is not None:
            await self._tokens.take()
        delay = self._pacer.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        return time.monotonic()

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        operation: str,
        method: str,
        url: str,
        content: bytes | None,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """One attempt: status, body and headers of the answer, transport failures counted."""
        self._stats.requests += 1
        headers = self._get_headers if content is None else self._post_headers
        try:
            async with session.request(
                method, self._base_url + url, data=content, headers=headers, allow_redirects=False
            ) as response:
                return response.status, await self._read_body(response, operation), response.headers
        except TRANSPORT_ERRORS as exc:
            self._stats.transport_errors += 1
            failure = self._transport_failure(operation, method, url, exc)
            if failure is None:
                raise
            raise failure from exc

    async def _read_body(self, response: aiohttp.ClientResponse, operation: str) -> bytes:
        """The whole body, refused past max_body_bytes before it is all in memory."""
        limit = self.config.max_body_bytes
        length = response.content_length
        if length is not None:
            if length > limit:
                raise self._too_large(response.status, operation, f"declares {length:,} bytes")
            return await response.read()
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                raise self._too_large(response.status, operation, f"passed {len(body):,} bytes")
        return bytes(body)

    def _too_large(self, status: int, operation: str, seen: str) -> BodyTooLarge:
        """The error for an answer over max_body_bytes, naming both sizes."""
        limit = self.config.max_body_bytes
        message = f"response body {seen}, over the limit of {limit:,} (max_body_bytes)"
        return BodyTooLarge(status, message, operation)

    def _transport_failure(
        self, operation: str, method: str, url: str, exc: BaseException
    ) -> ApiError | TimeoutError | None:
        """What a transport failure becomes: None to retry it as is, or the error to raise.

        A first request that cannot connect is a wrong URL (Unreachable). A POST that was sent
        may have landed (OutcomeUnknown, RequestTimedOut). A timeout of a GET is retried, its
        message saying which deadline ran out.
        """
        path = url.partition("?")[0]
        if _never_sent(exc):
            if self._reached:
                return None
            where = f"{self._base_url}{path}"
            message = self._scrub(f"cannot reach {where}: {_describe_failure(exc)}")
            return Unreachable(None, message, operation)
        timed_out = isinstance(exc, TimeoutError) and not isinstance(
            exc, aiohttp.ServerTimeoutError
        )
        limit = f"no complete answer within {self.config.request_timeout:g} s (request_timeout)"
        if method == "POST":
            if timed_out:
                message = f"{limit}: it may have been applied, so it was not resent"
                return RequestTimedOut(None, message, operation)
            detail = self._scrub(_describe_failure(exc))
            message = f"connection lost after sending ({detail}): it may have been applied"
            return OutcomeUnknown(None, message, operation)
        if timed_out:
            return TimeoutError(limit)
        return None

    def _scrub(self, text: str) -> str:
        """``text`` without the key or the base URL's credentials, in any letter case."""
        return scrubbed(text, self._secrets)

    async def _stream(self, operation: str, url: str, body: dict) -> AsyncIterator[StreamEvent]:
        """Send a streaming call (retried until the first byte) and yield its events."""
        state = self._state()
        content = _post_body(body, True)

        async def attempt() -> tuple[aiohttp.ClientResponse, float]:
            paced_at = await self._paced()
            sent_at = time.perf_counter()
            return await self._send(state.session, operation, url, content, paced_at), sent_at

        # The slot is held for the whole stream: an open stream is a request in flight.
        async with state.semaphore:
            response, sent_at = await self._retried(operation, attempt)
            try:
                async for event in read_events(response, sent_at, operation, self._stream_limits):
                    yield event
            finally:
                # Back to the pool once read to the end; an unfinished stream's connection closes.
                response.release()

    async def _send(
        self,
        session: aiohttp.ClientSession,
        operation: str,
        url: str,
        content: bytes,
        paced_at: float,
    ) -> aiohttp.ClientResponse:
        """One attempt at opening a stream: send, count, and raise for a failure status.

        request_timeout bounds the headers and, for a failure status, its body."""
        self._stats.requests += 1
        try:
            async with asyncio.timeout(self.config.request_timeout):
                response = await session.request(
                    "POST",
                    self._base_url + url,
                    data=content,
                    headers=self._stream_headers,
                    allow_redirects=False,
                    timeout=self._stream_timeout,
                )
                body = await _error_body(response) if response.status >= 400 else b""
        except TRANSPORT_ERRORS as exc:
            self._stats.transport_errors += 1
            failure = self._transport_failure(operation, "POST", url, exc)
            if failure is None:
                raise
            raise failure from exc
        self._check_status(operation, "POST", response.status, body, response.headers, paced_at)
        return response

    def _check_status(
        self,
        operation: str,
        method: str,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        sent_at: float,
    ) -> None:
        """Count the status and tell the pacer; for a failure, raise the error it stands for.

        A 5xx to a POST may come after the turn was stored (the API answers 502/504 after
        committing), so it is OutcomeUnknown, never retried; a 429 is refused before anything.
        """
        self._stats.statuses[status] += 1
        self._reached = True
        if status == 429:
            self._pacer.record_rate_limited(sent_at, headers)
        else:
            self._pacer.record_success(headers)
        if status < 400:
            return
        if status in RETRYABLE_STATUSES:
            message = self._scrub(describe_body(body, self.config.api_key)[0])
            if method == "POST" and status != 429:
                raise OutcomeUnknown(status, f"{message}: it may have been applied", operation)
            retry_after = parse_retry_after(headers.get("retry-after"))
            raise RetryableStatus(status, message, retry_after)
        raise error_for_status(status, body, operation, self._base_url, self.config.api_key)

    def _retrying(self, operation: str) -> AsyncRetrying:
        """A fresh retry loop per call (tenacity keeps per-call state on the object)."""
        return AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type(RETRYABLE_ERRORS),
            before_sleep=functools.partial(self._before_retry, operation),
            reraise=True,
        )

    def _stop(self, retry_state: RetryCallState) -> bool:
        """Stop after max_retries, except that 429s keep being retried for rate_limit_patience
        seconds in all: a token window lasts a minute."""
        if retry_state.attempt_number <= self.config.max_retries:
            return False
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        rate_limited = isinstance(failure, RetryableStatus) and failure.status == 429
        patient = retry_state.seconds_since_start < self.config.rate_limit_patience
        return not (rate_limited and patient)

    def _before_retry(self, operation: str, retry_state: RetryCallState) -> None:
        """Count and log a retry that is about to sleep."""
        self._stats.retries += 1
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        log.warning(
            "%s: retrying after %s (attempt %d, sleeping %.2f s)",
            operation,
            self._scrub(_describe_failure(failure)),
            retry_state.attempt_number,
            retry_state.upcoming_sleep,
        )

    @contextlib.contextmanager
    def _give_up_as(self, operation: str, retrying: AsyncRetrying) -> Iterator[None]:
        """Turn the last retryable failure of an exhausted retry loop into RetriesExhausted."""
        try:
            yield
        except RETRYABLE_ERRORS as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            described = self._scrub(_describe_failure(exc))
            message = f"gave up after {attempts} attempts: {described}"
            status = exc.status if isinstance(exc, RetryableStatus) else None
            raise RetriesExhausted(status, message, operation) from exc

    def _state(self) -> _OpenState:
        """What ``async with`` opened; calls outside it fail with a clear message."""
        if self._open is None:
            raise RuntimeError(
                "ConversationsClient must be used as `async with ConversationsClient(...)`"
            )
        return self._open


def _conversation_path(cid: str, suffix: str = "") -> str:
    """The path of one conversation; the id is quoted so it cannot escape its segment."""
    return f"/v1/conversations/{quote(cid, safe='')}{suffix}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, httpx's (certifi's CAs, SSL_CERT_FILE honoured): building
    one costs ~17 ms, which every client open used to pay."""
    return httpx.create_ssl_context()


def _env_proxy(base_url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy HTTP(S)_PROXY and NO_PROXY choose for the API, as httpx would by default.

    Looked up once: aiohttp's trust_env looks it up on every request, which doubled the CPU
    per request.
    """
    try:
        return get_env_proxy_for_url(URL(base_url))
    except LookupError:
        return None, None


_ERROR_BODY_LIMIT = 64 * 2**10


async def _error_body(response: aiohttp.ClientResponse) -> bytes:
    """The start of a failed stream's body (enough for its message), and the stream closed."""
    body = b""
    try:
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    finally:
        response.release()
    return body[:_ERROR_BODY_LIMIT]


def _never_sent(exc: BaseException) -> bool:
    """Whether a failure happened before the request left: DNS, refused, TLS, connect timeout."""
    return isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


def _decoded(body: bytes, operation: str) -> Any:
    """A 2xx body as JSON; one that is not JSON is an ApiError naming the operation."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(200, f"response is not JSON: {exc}", operation) from exc


def _post_body(body: dict, stream: bool) -> bytes:
    """The JSON body of a POST with ``stream`` set the way the call needs it."""
    return orjson.dumps({**body, "stream": stream})


def _describe_failure(failure: BaseException | None) -> str:
    """A short label for a retryable failure, for logs and RetriesExhausted messages."""
    if isinstance(failure, RetryableStatus):
        return f"HTTP {failure.status}: {failure.message}"
    return f"{type(failure).__name__}: {failure}"

"""When to retry and how long to wait: full-jitter exponential backoff honouring Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from tenacity import RetryCallState
from tenacity.wait import wait_base

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class RetryableStatus(Exception):
    """A 429/5xx answer, raised inside the retry loop so tenacity can wait and try again."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(status, message, retry_after)
        self.status = status
        self.message = message
        self.retry_after = retry_after


# Failures of the transport, not of the request: a refused or dropped connection, a timeout, a
# truncated body.
TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
RETRYABLE_ERRORS = (RetryableStatus, *TRANSPORT_ERRORS)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff; a server's Retry-After wins, capped at retry_after_max."""

    initial: float
    maximum: float
    retry_after_max: float

    def seconds(self, retry_number: int, retry_after: float | None) -> float:
        """Seconds to sleep before retry number ``retry_number`` (1-based)."""
        if retry_after is not None:
            # Everyone told "retry in 1 s" would come back in the same instant: spread them a bit.
            return min(retry_after, self.retry_after_max) + random.uniform(0, self.initial)
        ceiling = min(self.maximum, self.initial * 2 ** (retry_number - 1))
        return random.uniform(0, ceiling)


class BackoffWait(wait_base):
    """Tenacity wait strategy that reads Retry-After from the failure it is about to retry."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        """Seconds tenacity sleeps after the failed attempt described by ``retry_state``."""
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        retry_after = failure.retry_after if isinstance(failure, RetryableStatus) else None
        return self.backoff.seconds(retry_state.attempt_number, retry_after)

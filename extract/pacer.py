"""One request pace for a whole run, learned from the server's 429s (AIMD-like).

Unpaced until the first 429. A 429 for a request sent at the current pace cuts the pace, for
every worker, to 95% of what the server let through in the last second (a limiter that refuses
requests passes about its limit per second), and to at most 95% of the current pace; and it
holds every request until a second after the oldest of those successes, when that window
frees up. Only a 429 for a request sent a quarter second or more after the last cut cuts
again: a full fixed window answers 429 to everything until it reopens, and one cut per such 429
sank the pace for seconds (bench, 200/s fixed window, side by side under load: fetch 1.11 and
1.29 x N/R with a cut per 429; 1.10 and 1.14 with a quarter second; half a second let 5.9% of
requests be 429s). Each success after a one-second hold raises the pace a little (about 3% a
second, at least 1 request a second per second), so the pace climbs back when 429s stop.
Retry-After on a 429, and an ``X-RateLimit-Remaining: 0`` with its reset, hold every request
until that time.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

from extract.retry_policy import parse_retry_after

_CUT = 0.95
_GROWTH = 0.03
_HOLD_S = 1.0
_WINDOW_S = 1.0
_RECUT_S = 0.25
_MIN_RATE = 0.05
# Remaining/reset header pairs, the bare names first (as sent by most gateways).
_RATE_LIMIT_HEADERS = (
    ("x-ratelimit-remaining", "x-ratelimit-reset"),
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-req-minute", "x-ratelimit-reset-req-minute"),
)
_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"(?:{_NUMBER}h)?(?:{_NUMBER}m(?!s))?(?:{_NUMBER}s)?(?:(\d+)ms)?")
_EPOCH_AFTER = 1e9


def parse_reset(value: str, now_epoch: float) -> float | None:
    """Seconds until a rate-limit window resets: delta seconds, epoch seconds, or ``1m30s``."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        match = _DURATION.fullmatch(value)
        if not match or not value:
            return None
        h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
        return h * 3600 + m * 60 + s + ms / 1000
    return max(0.0, number - now_epoch) if number > _EPOCH_AFTER else max(0.0, number)


class RequestTokens(Protocol):
    """A request rate shared beyond this process (several workers on one key): one token per
    request sent, on top of the pace this process learns. The caller (flows/) brings it."""

    async def take(self) -> None:
        """Wait until one more request may be sent."""


class Pacer:
    """The shared pace: ``delay()`` before each send, ``record_*`` after each answer."""

    def __init__(self, ceiling: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.ceiling = ceiling
        self.rate: float | None = ceiling
        self.cuts = 0
        self._clock = clock
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_cut = float("-inf")
        self._successes: deque[float] = deque()

    def delay(self) -> float:
        """Seconds the caller must wait before sending; its slot is reserved."""
        rate = self.rate
        if rate is None and not self._paused_until:
            return 0.0
        now = self._clock()
        slot = max(now, self._paused_until)
        if rate is not None:
            slot = max(slot, self._next_slot)
            self._next_slot = slot + 1.0 / rate
        return slot - now

    def now(self) -> float:
        """The pacer's clock, to stamp when a request was sent."""
        return self._clock()

    def record_success(self, headers: Mapping[str, str]) -> None:
        """An answer that was not a 429: count it, climb back, and honour X-RateLimit-*."""
        now = self._clock()
        successes = self._successes
        successes.append(now)
        while successes[0] < now - _WINDOW_S:
            successes.popleft()
        rate = self.rate
        if rate is not None and now - self._last_cut > _HOLD_S:
            rate += max(_GROWTH, 1.0 / rate)
            self.rate = rate if self.ceiling is None else min(rate, self.ceiling)
        for remaining, reset in _RATE_LIMIT_HEADERS:
            if headers.get(remaining) == "0":
                self._pause_for_reset(headers.get(reset), now)
                return

    def record_rate_limited(self, sent_at: float, headers: Mapping[str, str]) -> None:
        """A 429 for a request sent at ``sent_at``: pause for Retry-After, cut the pace once."""
        now = self._clock()
        retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is not None:
            self._paused_until = max(self._paused_until, now + retry_after)
        else:
            for _, reset in _RATE_LIMIT_HEADERS:
                self._pause_for_reset(headers.get(reset), now)
        if sent_at < self._last_cut + _RECUT_S:
            return  # sent at an older, faster pace, or while the window was still full
        successes = self._successes
        while successes and successes[0] < now - _WINDOW_S:
            successes.popleft()
        if successes:
            passed = float(len(successes))
            rate = passed if self.rate is None else min(passed, self.rate)
            # What passed in the last second filled the window: it frees up a second after the
            # oldest of those (exactly so for a sliding window; a fixed one reopens sooner).
            self._paused_until = max(self._paused_until, successes[0] + _WINDOW_S)
        elif self.rate is None:
            return  # nothing let through yet: no measure of the limit, backoff alone waits
        else:
            rate = self.rate / 2
        self.rate = max(_MIN_RATE, _CUT * rate)
        self._next_slot = max(self._next_slot, now)
        self._last_cut = now
        self.cuts += 1

    def _pause_for_reset(self, value: str | None, now: float) -> None:
        """Hold every request until a rate-limit reset the server announced."""
        if value:
            seconds = parse_reset(value, time.time())
            if seconds is not None:
                self._paused_until = max(self._paused_until, now + seconds)

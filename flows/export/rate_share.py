"""One request rate shared by every worker on a key: a Prefect global concurrency limit used as a
rate limit (its ``slot_decay_per_second`` is the rate, its ``limit`` the largest burst).

One call to Prefect's API per request is too slow: two workers then reach 0.23 of the rate
(bench/rate_share_bench.py, R = 50/s, limit 50). Slots are taken a chunk at a time
(``occupy=k``) and handed out one per request from this process. Measured there: a chunk of a
quarter of the limit reaches 0.75 of R, half the limit 0.86, the whole limit 0.67 (a chunk as big
as the limit waits for an empty limit; Prefect's Retry-After adds jitter). So a chunk is half the
limit, and at most half a second of the rate. Whatever the chunk, the workers together take at
most ``limit`` + R x seconds slots; bursts within that are the adaptive pace's to absorb (a 429
still slows the run).
"""

from __future__ import annotations

import asyncio
import math

from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import rate_limit
from prefect.exceptions import ObjectNotFound

CHUNK_SECONDS = 0.5


class RateLimitMissing(Exception):
    """The named rate limit does not exist or is not a rate limit; the message is one line."""


class SharedRate:
    """Request tokens (extract.pacer.RequestTokens) drawn from a Prefect rate limit in chunks."""

    def __init__(self, name: str, chunk: int) -> None:
        self.name = name
        self.chunk = chunk
        self.chunks_taken = 0
        self._left = 0
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        """Wait until one more request may be sent by everyone sharing this limit."""
        async with self._lock:
            if self._left == 0:
                await rate_limit(self.name, occupy=self.chunk, strict=True)
                self.chunks_taken += 1
                self._left = self.chunk
            self._left -= 1


def chunk_size(limit: int, slots_per_second: float) -> int:
    """Slots to take per call: half the limit, at most half a second of the rate, at least 1."""
    return max(1, min(limit // 2, math.ceil(slots_per_second * CHUNK_SECONDS)))


async def shared_rate(name: str) -> SharedRate:
    """The rate limit ``name`` as a token source; RateLimitMissing when there is none to use."""
    create = f"create it with `prefect gcl create {name} --limit N --slot-decay-per-second R`"
    async with get_client() as client:
        try:
            found = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            missing = f"no global concurrency limit named {name!r}: {create}"
            raise RateLimitMissing(missing) from None
    if not found.slot_decay_per_second:
        raise RateLimitMissing(
            f"the global concurrency limit {name!r} has no slot decay, so it limits concurrency, "
            f"not a rate: `prefect gcl update {name} --slot-decay-per-second R`"
        )
    return SharedRate(name, chunk_size(found.limit, found.slot_decay_per_second))

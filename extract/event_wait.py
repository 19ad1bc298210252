"""A bound on each wait for a stream's next event, without a timer per event.

``asyncio.timeout`` around every wait schedules and cancels a timer per event: at 64 streams in
flight that was ~15% of the replay's event loop. Here one timer per stream is re-armed only when
it fires before the wait it guards is due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class EventWait:
    """``await wait.bounded(...)`` for each wait; TimeoutError once a wait outlasts
    ``idle_timeout`` or the stream outlasts ``total_left`` seconds from now (then
    ``total_ran_out`` is True).

    Only the waits are timed: the time the consumer spends between events does not count.
    Call ``close`` when the stream ends.
    """

    def __init__(self, idle_timeout: float, total_left: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("EventWait must be used inside a task")
        self._task = task
        self._idle = idle_timeout
        self._deadline = self._loop.time() + max(total_left, 0.0)
        self._waiting_since: float | None = None
        self._expired = False
        self.total_ran_out = False
        self._timer: asyncio.TimerHandle | None = None

    async def bounded(self, awaitable: Awaitable[T]) -> T:
        """``await awaitable``, timed as one wait; TimeoutError if it runs out."""
        self._waiting_since = self._loop.time()
        cancelling = self._task.cancelling()
        if self._timer is None:
            self._timer = self._loop.call_at(self._due(self._waiting_since), self._check)
        try:
            return await awaitable
        except asyncio.CancelledError as exc:
            if self._expired:
                self._expired = False
                if self._task.uncancel() <= cancelling:
                    raise TimeoutError from exc
            raise
        finally:
            self._waiting_since = None

    def close(self) -> None:
        """Cancel the timer; the stream is over."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self, waiting_since: float) -> float:
        """When a wait that began at ``waiting_since`` runs out."""
        return min(waiting_since + self._idle, self._deadline)

    def _check(self) -> None:
        """The timer fired: expire the wait in progress if it is due, else re-arm for it."""
        self._timer = None
        since = self._waiting_since
        if since is None:
            return  # between waits: the next wait arms the timer again
        due = self._due(since)
        now = self._loop.time()
        if now < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._expired = True
        self.total_ran_out = now >= self._deadline
        self._task.cancel()

"""A bounded wait for the warehouse file: backoff, said once on stderr, then one line.

A process waits when the file is held and nobody can answer for it: a writer waits for a reader
that has the file open read-only, a reader for a writer that serves no reads (an older version,
or one between opening and serving). CONVO_ETL_LOCK_WAIT (seconds) bounds the wait.
"""

import os
import sys
import time

LOCK_WAIT_ENV = "CONVO_ETL_LOCK_WAIT"
DEFAULT_LOCK_WAIT_SECONDS = 60.0
_FIRST_PAUSE = 0.05
_LONGEST_PAUSE = 1.0


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file, and waiting for it did not help."""


class LockWait:
    """Pauses with growing backoff until a deadline, then raises the caller's WarehouseLocked."""

    def __init__(self, seconds: float | None = None) -> None:
        self._seconds = seconds
        self._deadline: float | None = None
        self._pause = _FIRST_PAUSE

    def pause(self, locked: WarehouseLocked, waiting: str) -> None:
        """Sleep a little (saying ``waiting`` on stderr the first time), or raise ``locked``."""
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + _wait_seconds(self._seconds, locked)
            if self._deadline > now:
                print(waiting, file=sys.stderr, flush=True)
        if now >= self._deadline:
            raise locked
        time.sleep(min(self._pause, self._deadline - now))
        self._pause = min(2 * self._pause, _LONGEST_PAUSE)


def _wait_seconds(seconds: float | None, locked: WarehouseLocked) -> float:
    """The given bound, else CONVO_ETL_LOCK_WAIT's, else the default."""
    if seconds is not None:
        return seconds
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_WAIT_SECONDS
    try:
        return max(0.0, float(text))
    except ValueError:
        raise WarehouseLocked(
            f"{locked}; {LOCK_WAIT_ENV}={text!r} is not a number of seconds to wait for it"
        ) from None

"""Interpreter settings for the hot phase of a run (an export's fetch, a replay's streams)."""

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# How long a thread holding the GIL runs before one waiting for it is let in (Python's default
# is 5 ms): a store thread decoding and flattening a batch held the event loop that long.
_HOT_SWITCH_INTERVAL_S = 0.001


@contextmanager
def hot_phase() -> Iterator[None]:
    """Keep the garbage collector off a run's hot path, and the event loop's GIL waits short.

    Each request leaves short-lived reference cycles (retry state, responses); with the default
    thresholds the collector kept rescanning every object Prefect and the imports made, for
    0.75 s of full collections in a 2,000-conversation fetch (0.05 s with this). The store
    thread's Python work (JSON decoding, flattening) holds the GIL while responses wait on the
    loop; a 1 ms switch interval brought the export's fetch from 1.23x to 1.17x its limit.
    """
    thresholds = gc.get_threshold()
    switch_interval = sys.getswitchinterval()
    gc.freeze()
    gc.set_threshold(10_000, 50, 1_000)
    sys.setswitchinterval(_HOT_SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()

"""Interpreter settings for the hot phase of a run (an export's fetch, a replay's streams)."""

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# How long a thread holding the GIL runs before one waiting for it is let in (Python's default
# is 5 ms): a store thread decoding and flattening a batch held the export's event loop that long.
_SHORT_SWITCH_INTERVAL_S = 0.001
# New tracked objects between two young collections (Python's default is 700).
EXPORT_YOUNG_OBJECTS = 10_000


@contextmanager
def hot_phase(
    short_gil_switches: bool = False, young_objects: int = EXPORT_YOUNG_OBJECTS
) -> Iterator[None]:
    """Keep the garbage collector off a run's hot path while it runs; with
    ``short_gil_switches``, keep the event loop's waits for the GIL short too.

    Each request leaves short-lived reference cycles (retry state, responses); with the default
    thresholds the collector kept rescanning every object Prefect and the imports made, for
    0.75 s of full collections in a 2,000-conversation fetch (0.05 s with this). A run whose
    objects wait long for their batch (a replay's events) collects its young ones less often
    (``young_objects``).

    Short switches are for the export, whose store thread's Python work (JSON decoding,
    flattening) holds the GIL while responses wait on the loop: a 1 ms switch interval brought
    its fetch from 1.23x to 1.17x its limit. The replay's loop is itself the busy thread, and
    being made to yield more often slowed it (3,000 prompts at 64 in flight, alternating runs:
    1.33x, 1.37x and 1.53x its bound with 5 ms; 1.58x, 1.59x and 1.77x with 1 ms).
    """
    thresholds = gc.get_threshold()
    switch_interval = sys.getswitchinterval()
    gc.freeze()
    gc.set_threshold(young_objects, 50, 1_000)
    if short_gil_switches:
        sys.setswitchinterval(_SHORT_SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()

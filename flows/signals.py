"""SIGTERM stops a command the way Ctrl-C does, so both unwind through the same cleanup.

asyncio turns Ctrl-C into a cancellation of the running flow (its finally blocks record the run
as interrupted); Prefect's own SIGTERM handler instead raises wherever the loop happens to be,
which can skip that cleanup. A flow re-installs ours while it runs (Prefect installs its own when
the flow starts and restores ours when it ends); the CLI then exits 143 rather than 130.
"""

import asyncio
import signal
import threading
from types import FrameType

# How Ctrl-C and SIGTERM reach a flow: asyncio cancels it; a second Ctrl-C raises
# KeyboardInterrupt.
STOP_SIGNALS = (asyncio.CancelledError, KeyboardInterrupt)

_received: set[int] = set()


def terminated() -> bool:
    """Whether this process got SIGTERM."""
    return signal.SIGTERM in _received


def stop_like_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGTERM's handler: remember it, then do what SIGINT's handler does now."""
    _received.add(signum)
    on_interrupt = signal.getsignal(signal.SIGINT)
    if callable(on_interrupt):
        on_interrupt(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def install() -> None:
    """Make SIGTERM stop like Ctrl-C from here on (main thread only; elsewhere a no-op).

    A flow calls it first thing: Prefect replaced the handler when the flow started (and puts
    back the one it replaced when the flow ends)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_like_ctrl_c)

"""Where this process's Prefect API is; when none is set, a temporary server we start ourselves.

Prefect would start the same temporary server (uvicorn serving
``prefect.server.api.server:create_app`` in a child process) at the first flow call, but to do so
it imports the whole server (FastAPI, SQLAlchemy, asyncpg) into this process: 77 MB of an
export's memory, measured, for code that runs in the child. Starting the child ourselves keeps
those imports out of the exporting process (flows.prefect_server starts, waits for and stops it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

# The flow engine, which Prefect imports at the first flow call: imported with the command
# instead, while the early temporary server comes up (flows.launch), not after it.
import prefect.flow_engine  # noqa: F401
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings
from rich.console import Console

from extract.urls import redacted_url
from flows.prefect_server import (
    PrefectServerFailed,
    ServerProcess,
    answering_server,
    answers,
    discard_early,
)

__all__ = [
    "PrefectServerFailed",
    "answers",
    "check_answers",
    "prefect_api",
    "prefect_api_awaited",
    "prefect_api_url",
]

DRAIN_TIMEOUT_S = 10.0


def prefect_api_url() -> str | None:
    """The Prefect API this process talks to, or None when none is configured."""
    return get_current_settings().api.url


@contextmanager
def prefect_api(console: Console) -> Iterator[str]:
    """The configured Prefect API, or a temporary server for as long as the block runs (the one
    the entry point started early, if it did: `flows.prefect_server.start_early`)."""
    with _serving(*asyncio.run(_api_for_flows(console))) as url:
        yield url


@asynccontextmanager
async def prefect_api_awaited(console: Console) -> AsyncIterator[str]:
    """`prefect_api`, its server awaited: the event loop's other work goes on while it comes up
    (an export's head start, flows.export.head_start)."""
    with _serving(*await _api_for_flows(console)) as url:
        yield url


async def _api_for_flows(console: Console) -> tuple[str, ServerProcess | None]:
    """The configured API's URL once it answers, or a temporary server's URL and the server."""
    configured = prefect_api_url()
    if configured is not None:
        discard_early()
        await asyncio.to_thread(check_answers, configured)
        return configured, None
    console.print(
        "starting Prefect (a temporary local server, 5-20 s; set PREFECT_API_URL to use "
        "a running one)...",
        highlight=False,
    )
    server = await answering_server()
    return server.url, server


@contextmanager
def _serving(url: str, server: ServerProcess | None) -> Iterator[str]:
    """Flows in this block talk to ``url``; a temporary ``server`` stops when the block ends."""
    if server is None:
        yield url
        return
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                _drain_prefect_workers()
    finally:
        server.stop()


def check_answers(url: str) -> None:
    """Fail in one line, before any flow runs, when the configured Prefect API does not answer
    (Prefect itself would retry for minutes and then print pages of tracebacks)."""
    if not answers(url):
        raise PrefectServerFailed(
            f"no Prefect API answers at {redacted_url(url)} (PREFECT_API_URL): start it, or unset "
            "PREFECT_API_URL to use a temporary one"
        )


def _drain_prefect_workers() -> None:
    """Send the logs and events Prefect still holds before their server stops (as Prefect's own
    test harness does), so that nothing is lost and nothing retries against a closed port.

    In a thread of its own: on an event loop (`prefect_api_awaited`), Prefect's drain_all only
    starts the drain and returns a coroutine to await."""
    drainer = threading.Thread(target=_drain_now, name="prefect-drain")
    drainer.start()
    drainer.join()


def _drain_now() -> None:
    """Drain Prefect's log and event workers, each for at most DRAIN_TIMEOUT_S."""
    APILogWorker.drain_all(timeout=DRAIN_TIMEOUT_S)
    EventsWorker.drain_all(timeout=DRAIN_TIMEOUT_S)

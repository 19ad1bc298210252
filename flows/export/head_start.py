"""The export's head start: its listing and fetch begin while Prefect comes up.

`convo-etl export` without PREFECT_API_URL waits seconds for its temporary Prefect server, and the
flow run's first calls to a cold server take about a second more (bench/startup_bench.py); the
listing and the fetch need neither. So the command opens the client and the warehouse, and lists
and fetches on its event loop meanwhile; the flow run then adopts what is under way (`adopt`):
the same client and warehouse, the pages listed so far (replayed to its listing, not asked for
again) and the conversations fetched so far, which its fetch-batch tasks take (`take`) instead of
asking the API again. A conversation is requested once, by whichever comes first.

Nothing is stored before the flow run: every row is still written by a recorded task of a
recorded run. A run that never starts (its server failed, Ctrl-C) leaves nothing behind: what was
fetched is dropped, and a warehouse the head start created is removed.

What waits for the flow run is bounded: at most AHEAD_LISTED listed conversations (an unchanged
one kept as its id and updated_at only, all the flow's listing reads of it), and
AHEAD_CONVERSATIONS conversations to fetch, or AHEAD_BYTES of fetched bodies.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb

from extract.client import ClientConfig, ConversationsClient
from extract.pager import iter_conversation_pages
from flows.export.fetch import Fetched, FetchedConversation, fetch_one_or_failure
from flows.export.opening import discard_warehouse, first_page_and_warehouse
from flows.export.pipeline import ExportOptions
from flows.export.plan import run_client_config, run_options
from flows.export.selection import select_for_fetch
from flows.hot_phase import hot_phase
from flows.settings import Settings, load_settings
from load.lake.location import is_lake_url
from load.warehouse import stored_updated_at, warehouse_path
from transform.updated_at_index import UpdatedAtIndex

AHEAD_LISTED = 50_000
AHEAD_CONVERSATIONS = 4096
AHEAD_BYTES = 64 * 2**20

Arrival = tuple[Fetched, datetime]


class HeadStart:
    """One export's listing and fetch, begun (on the running event loop, with ``client`` open)
    before its flow run exists."""

    def __init__(
        self,
        settings: Settings,
        client: ConversationsClient,
        options: ExportOptions,
        page_size: int,
    ) -> None:
        self.options = options
        self.page_size = page_size
        self.client = client
        self.started_at = datetime.now(UTC)
        # What the listing compares against, read once the warehouse is open.
        self.stored: UpdatedAtIndex | None = None
        # When the last list page came back, if it came back ahead.
        self.listed_all_at: datetime | None = None
        # Conversations the flow run took from here instead of asking the API.
        self.taken = 0
        self._settings = settings
        self._created = not warehouse_path(settings.data_dir).exists()
        self._pager = iter_conversation_pages(client, page_size)
        self._pages: deque[list[dict]] = deque()
        self._listed_ahead = 0  # conversations in those pages
        self._listing_error: Exception | None = None
        self._listing_taken = False
        self._walked = False
        self._queued: dict[str, dict] = {}  # chosen, not begun: in listing order
        self._begun: dict[str, asyncio.Future[Arrival]] = {}  # begun, not taken
        self._held_bytes = 0
        self._wake = asyncio.Event()
        self._opened_taken = False
        self._opening = asyncio.create_task(self._open())
        self._walker = asyncio.create_task(self._walk())
        self._fetchers = [
            asyncio.create_task(self._fetch_ahead()) for _ in range(client.config.concurrency)
        ]

    def matches(self, config: ClientConfig, options: ExportOptions, page_size: int) -> bool:
        """Whether a run asked for this is the one this head start began."""
        return (self.client.config, self.options, self.page_size) == (config, options, page_size)

    async def opened(self) -> tuple[list[dict] | None, duckdb.DuckDBPyConnection]:
        """The first list page and the open warehouse, now the caller's (its error, if the key
        was rejected or the warehouse could not be opened)."""
        self._opened_taken = True
        return await self._opening

    async def pages(self) -> AsyncIterator[list[dict]]:
        """The listing after its first page: the pages listed ahead, then the rest of the walk."""
        self._listing_taken = True
        await asyncio.wait([self._walker])  # the page it is waiting for, at most
        while self._pages:
            yield self._pages.popleft()
        if self._listing_error is not None:
            raise self._listing_error
        async for page in self._pager:
            yield page

    def take(self, conversation_id: str) -> asyncio.Future[Arrival] | None:
        """The fetch of ``conversation_id`` begun ahead, now the caller's; None if none was begun
        (it will not be: the caller fetches it)."""
        arrival = self._begun.pop(conversation_id, None)
        if arrival is None:
            self._queued.pop(conversation_id, None)
            return None
        if arrival.done() and not arrival.cancelled() and arrival.exception() is None:
            self._held_bytes -= _body_bytes(arrival.result()[0])
        self.taken += 1
        self._wake.set()  # room for another
        return arrival

    async def close(self) -> None:
        """Stop what still runs and close the client; close the warehouse unless a flow run
        took it (`opened`), and then remove it if this head start created it: nothing was
        written to it."""
        tasks = [self._walker, *self._fetchers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for arrival in self._begun.values():  # not taken by a flow run
            if not arrival.done():
                arrival.cancel()
            elif not arrival.cancelled():
                arrival.exception()  # retrieved here, as nobody else will: asyncio logs it else
        if not self._opened_taken:
            self._opening.cancel()
            opened = (await asyncio.gather(self._opening, return_exceptions=True))[0]
            if isinstance(opened, tuple):
                discard_warehouse(opened[1], self._settings.data_dir if self._created else None)
        await self._pager.aclose()  # once nothing iterates it
        await self.client.__aexit__(None, None, None)

    async def _open(self) -> tuple[list[dict] | None, duckdb.DuckDBPyConnection]:
        """The first page and the warehouse (flows.export.opening), and the stored state."""
        first_page, warehouse = await first_page_and_warehouse(
            self._pager, self._settings, listing=True
        )
        self.stored = UpdatedAtIndex(stored_updated_at(warehouse, self.options.workspace))
        return first_page, warehouse

    async def _walk(self) -> None:
        """List ahead until the flow's listing takes over, or as much waits for it as may."""
        try:
            await asyncio.wait([self._opening])  # not cancelled with the walker: see close
            first_page, _ = self._opening.result()
            self._choose(first_page or [])
            while not self._listing_taken and not self._listed_enough():
                page = await anext(self._pager, None)
                if page is None:
                    self.listed_all_at = datetime.now(UTC)
                    break
                self._pages.append(self._choose(page))
                self._listed_ahead += len(page)
        except Exception as error:  # the flow run meets it where its own listing would
            self._listing_error = error
        finally:
            self._walked = True
            self._wake.set()

    def _choose(self, page: list[dict]) -> list[dict]:
        """Queue a page's conversations to fetch, as the flow's listing will choose them; the
        page to replay to it, each conversation not chosen cut to its id and updated_at."""
        chosen = select_for_fetch(page, self.stored or {}, self.options.full)
        for item in chosen:
            self._queued[item["id"]] = item
        self._wake.set()
        if len(chosen) == len(page):
            return page
        chosen_ids = {item["id"] for item in chosen}
        return [
            item
            if item["id"] in chosen_ids
            else {"id": item["id"], "updated_at": item.get("updated_at")}
            for item in page
        ]

    def _listed_enough(self) -> bool:
        """Whether as many listed conversations, or conversations to fetch, wait as may."""
        return self._listed_ahead >= AHEAD_LISTED or len(self._queued) >= AHEAD_CONVERSATIONS

    async def _fetch_ahead(self) -> None:
        """Fetch queued conversations in listing order while they fit AHEAD_CONVERSATIONS and
        AHEAD_BYTES; stop when the listing ahead ended and nothing is queued."""
        while True:
            while not self._queued or self._full():
                if self._walked and not self._queued:
                    return
                self._wake.clear()
                await self._wake.wait()
            conversation_id = next(iter(self._queued))
            item = self._queued.pop(conversation_id)
            arrival: asyncio.Future[Arrival] = asyncio.get_running_loop().create_future()
            self._begun[conversation_id] = arrival
            try:
                result = await fetch_one_or_failure(self.client, conversation_id, item)
            except asyncio.CancelledError:
                arrival.cancel()
                raise
            except Exception as error:  # a rejected key: every request would fail alike
                arrival.set_exception(error)
                return
            if conversation_id in self._begun:
                self._held_bytes += _body_bytes(result)
            arrival.set_result((result, datetime.now(UTC)))

    def _full(self) -> bool:
        """Whether as much waits for the flow run as may."""
        return len(self._begun) >= AHEAD_CONVERSATIONS or self._held_bytes >= AHEAD_BYTES


def _body_bytes(result: Fetched) -> int:
    """The bytes a fetched conversation holds in memory (its two bodies)."""
    if isinstance(result, FetchedConversation):
        return len(result.history) + len(result.messages)
    return 0


_offered: HeadStart | None = None


def can_start_ahead(flow_kwargs: Mapping[str, Any]) -> bool:
    """Whether an export asked for this can begin before its flow run: not when its key or its
    rate comes from Prefect, nor for a lake or a list of ids."""
    return not (
        is_lake_url(flow_kwargs["data_dir"])
        or flow_kwargs["conversation_ids"]
        or flow_kwargs["api_key_secret"]
        or flow_kwargs["rate_limit_name"]
    )


@asynccontextmanager
async def running_ahead(flow_kwargs: Mapping[str, Any]) -> AsyncIterator[None]:
    """Begin the export ``flow_kwargs`` ask for (when it can begin before its flow run) and
    offer it to the flow run (`adopt`) for as long as the block runs."""
    global _offered
    if not can_start_ahead(flow_kwargs):
        yield
        return
    settings = load_settings(flow_kwargs["data_dir"], flow_kwargs["base_url"])
    client = ConversationsClient(
        run_client_config(
            settings, flow_kwargs["concurrency"], flow_kwargs["rps"], flow_kwargs["limits"]
        )
    )
    await client.__aenter__()
    head = HeadStart(
        settings,
        client,
        run_options(
            settings,
            full=flow_kwargs["full"],
            conversation_ids=None,
            batch_size=flow_kwargs["batch_size"],
            max_failures=flow_kwargs["max_failures"],
            show_progress=flow_kwargs["show_progress"],
            purge_deleted=flow_kwargs["purge_deleted"],
            workspace=flow_kwargs["workspace"],
        ),
        flow_kwargs["page_size"],
    )
    _offered = head
    try:
        with hot_phase(short_gil_switches=True):  # as the flow run's fetch: the same work
            yield
    finally:
        _offered = None
        await head.close()


def adopt(config: ClientConfig, options: ExportOptions, page_size: int) -> HeadStart | None:
    """The head start begun for a run asked for this, now the caller's; None if there is none."""
    global _offered
    head = _offered
    if head is None or not head.matches(config, options, page_size):
        return None
    _offered = None
    return head

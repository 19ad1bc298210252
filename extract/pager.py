"""Walk the list endpoint to its end, pages fetched ahead, without yielding a conversation twice.

The list is newest first with page numbers, not cursors: a conversation created while we page
pushes every later one down a slot, so the next page repeats the previous page's tail. We keep
paging until a short or empty page and drop ids already seen. (Conversations created after the
walk began may be missed; the next incremental run picks them up at the head.)

One page per round trip made an unchanged run over 10,000 conversations latency-bound: 101
requests one after another. So pages are fetched ahead: one at first, then one more in flight
for every full page that comes back (doubling per round trip, like TCP's slow start) up to
``window`` (and the client's own concurrency). Pages are still yielded in page order. The cost
of not knowing where the list ends: at most ``window - 1`` requests past the last page, sent
with it and awaited (not cancelled, so that every request counted reached the server).

Pages in flight together may be served in any order, and a page served before an earlier one
and before a new conversation arrived would skip the conversation pushed across their border.
So a page repeating an id (the list moved) cancels the pages fetched ahead and asks for them
again, after it. Proof that nothing old is skipped: page k+1 skips something only if it was
served at a smaller shift than page k; since the last restart r, every page was asked for after
page r came back (shift at least r's) and none showed a repeat (shift never rose), so all have
r's shift, k+1's included. A list that keeps moving is walked about one page per round trip.

The ids seen are kept for the last ``RECENT_PAGES`` pages only, not for the whole walk (a set of
1,000,000 ids held ~124 MB): a page repeats only ids of the pages just before it, as many as
were created since those were served. A repeat from further back (more than 32 pages, 3,200
conversations at 100 a page, created between two page requests) would be yielded again.

A server that ignores ``page`` would be paged forever, and a body that is not a list of
conversations would fail somewhere downstream; both stop the walk with ``ListingBroken``. (Two
full pages in a row with nothing new could also be a page's worth of conversations created
between two requests, twice: at 100 a page, far beyond a real workspace.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from extract.errors import ApiError

if TYPE_CHECKING:
    from extract.client import ConversationsClient

STALE_PAGES_LIMIT = 2
DEFAULT_WINDOW = 16
RECENT_PAGES = 2 * DEFAULT_WINDOW


class ListingBroken(ApiError):
    """The list endpoint misbehaves: a page with nothing new (``page`` ignored) or a bad body."""

    def __init__(self, page: int, problem: str) -> None:
        super().__init__(200, f"page {page}: {problem}", "list")
        self.page = page
        self.args = (page, problem)


async def iter_conversation_pages(
    client: ConversationsClient, page_size: int = 100, *, window: int = DEFAULT_WINDOW
) -> AsyncIterator[list[dict]]:
    """Yield each page's not-yet-seen conversations, from page 0 until a short or empty page.

    ``window`` bounds the list requests in flight (1 walks one page at a time). Raises
    ``ListingBroken`` on a malformed page, or once ``STALE_PAGES_LIMIT`` full pages in a row
    brought no new id.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    window = min(window, client.config.concurrency)
    in_flight: deque[asyncio.Task[Any]] = deque()
    seen = RecentIds(RECENT_PAGES)
    stale = 0
    wanted = 1
    page = 0
    fresh: list[dict] = []
    try:
        while True:
            while len(in_flight) < wanted:
                ahead = page + len(in_flight)
                in_flight.append(
                    asyncio.create_task(client.list_conversations(page=ahead, page_size=page_size))
                )
            if fresh:
                yield fresh  # the previous page's, once the next ones are on their way
            items = _conversations(page, await in_flight.popleft())
            fresh = seen.unseen(items)
            if len(items) < page_size:
                # The pages asked for past the end were sent with this one: let them finish
                # rather than cancel them, so every request counted reached the server.
                await asyncio.gather(*in_flight, return_exceptions=True)
                in_flight.clear()
                if fresh:
                    yield fresh
                return
            if len(fresh) == len(items):
                stale = 0
                wanted = min(wanted + 1, window)
            else:
                stale = 0 if fresh else stale + 1
                if stale >= STALE_PAGES_LIMIT:
                    raise ListingBroken(
                        page,
                        f"{stale} full pages in a row brought no conversation not listed "
                        "already: the server seems to ignore `page`",
                    )
                # The list moved: pages fetched ahead may predate this one. Ask again, after it.
                await _cancel(in_flight)
                wanted = 1
            page += 1
    finally:
        await _cancel(in_flight)


class RecentIds:
    """The ids of the last ``pages`` pages walked: what a new page can repeat, in bounded memory."""

    def __init__(self, pages: int) -> None:
        self._pages: deque[list[str]] = deque(maxlen=pages)
        self._ids: set[str] = set()

    def unseen(self, items: list[dict]) -> list[dict]:
        """The items of a page not in the recent pages (nor earlier in it), remembered as one."""
        fresh = []
        for item in items:
            if item["id"] not in self._ids:
                self._ids.add(item["id"])
                fresh.append(item)
        if len(self._pages) == self._pages.maxlen:
            self._ids.difference_update(self._pages[0])
        self._pages.append([item["id"] for item in fresh])
        return fresh


async def _cancel(in_flight: deque[asyncio.Task[Any]]) -> None:
    """Cancel the pages fetched ahead and wait until they are gone, their errors dropped."""
    for task in in_flight:
        task.cancel()
    await asyncio.gather(*in_flight, return_exceptions=True)
    in_flight.clear()


def _conversations(page: int, body: Any) -> list[dict]:
    """``body`` if it is a list of objects with string ids, else ``ListingBroken`` saying why."""
    if not isinstance(body, list):
        raise ListingBroken(page, f"expected a JSON array of conversations, got {_kind(body)}")
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise ListingBroken(page, f"item {index} is {_kind(item)}, not a conversation object")
        if not isinstance(item.get("id"), str):
            raise ListingBroken(page, f'item {index} has no string "id"')
    return body


def _kind(value: Any) -> str:
    """The JSON name of ``value``'s type, with an article, for messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)

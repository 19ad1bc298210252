"""Walk the list endpoint to its end without yielding a conversation twice.

The list is newest first with page numbers, not cursors: a conversation created while we page
pushes every later one down a slot, so the next page repeats the previous page's tail. We keep
paging until a short or empty page and drop ids already seen. (Conversations created after the
walk began may be missed; the next incremental run picks them up at the head.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from extract.client import ConversationsClient


async def iter_conversation_pages(
    client: ConversationsClient, page_size: int = 100
) -> AsyncIterator[list[dict]]:
    """Yield each page's not-yet-seen conversations, from page 0 until a short or empty page."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    seen: set[str] = set()
    page = 0
    while True:
        items = await client.list_conversations(page=page, page_size=page_size)
        fresh = []
        for item in items:
            if item["id"] not in seen:
                seen.add(item["id"])
                fresh.append(item)
        if fresh:
            yield fresh
        if len(items) < page_size:
            return
        page += 1

"""The list pager: every conversation once, to the last page, even while new ones arrive."""

import asyncio
from typing import Any

from extract.client import ClientConfig, ConversationsClient
from extract.pager import iter_conversation_pages


async def _walk(emu: Any, page_size: int, on_page: Any = None) -> list[list[dict]]:
    """All pages the pager yields from ``emu``; ``on_page`` runs after each one is received."""
    pages = []
    config = ClientConfig(base_url=emu.url, api_key=emu.config.api_key or "sk-emulator-any")
    async with ConversationsClient(config) as client:
        async for page in iter_conversation_pages(client, page_size=page_size):
            pages.append(page)
            if on_page is not None:
                on_page()
    return pages


def test_pages_cover_every_conversation_in_order_ending_on_a_short_page(emulator: Any) -> None:
    expected = [c["id"] for c in emulator.store.conversations_newest_first()]
    before = emulator.store.request_counts["list"]
    pages = asyncio.run(_walk(emulator, page_size=7))
    assert [len(p) for p in pages] == [7] * 8 + [4]
    assert [c["id"] for page in pages for c in page] == expected
    assert emulator.store.request_counts["list"] - before == 9


def test_an_exactly_full_last_page_is_followed_by_one_empty_page(emulator: Any) -> None:
    expected = [c["id"] for c in emulator.store.conversations_newest_first()]
    before = emulator.store.request_counts["list"]
    pages = asyncio.run(_walk(emulator, page_size=20))
    assert [len(p) for p in pages] == [20, 20, 20]
    assert [c["id"] for page in pages for c in page] == expected
    assert emulator.store.request_counts["list"] - before == 4


def test_no_conversation_twice_when_new_ones_arrive_at_the_head(make_emulator: Any) -> None:
    emu = make_emulator(conversations=25, seed=9)
    original = [c["id"] for c in emu.store.conversations_newest_first()]
    added: list[str] = []

    def add_two() -> None:
        added.extend(emu.store.add_conversation()["id"] for _ in range(2))

    pages = asyncio.run(_walk(emu, page_size=10, on_page=add_two))
    walked = [c["id"] for page in pages for c in page]
    assert len(walked) == len(set(walked))
    assert walked == original
    assert len(added) == 2 * len(pages)
    assert emu.store.request_counts["list"] == 3


def test_an_empty_workspace_yields_no_pages(make_emulator: Any) -> None:
    emu = make_emulator(conversations=0)
    assert asyncio.run(_walk(emu, page_size=10)) == []
    assert emu.store.request_counts["list"] == 1

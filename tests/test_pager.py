"""The list pager: every conversation once, to the last page, even while new ones arrive.

Each scenario runs one page at a time (window 1: exact request counts) and with pages fetched
ahead (the default window: at most window - 1 requests past the last page).
"""

import asyncio
from typing import Any

import pytest

from extract.client import ClientConfig, ConversationsClient
from extract.pager import iter_conversation_pages

WINDOW = 16


async def _walk(
    emu: Any, page_size: int, window: int = WINDOW, on_page: Any = None
) -> list[list[dict]]:
    """All pages the pager yields from ``emu``; ``on_page`` runs after each one is received."""
    pages = []
    config = ClientConfig(base_url=emu.url, api_key=emu.config.api_key or "sk-emulator-any")
    async with ConversationsClient(config) as client:
        async for page in iter_conversation_pages(client, page_size=page_size, window=window):
            pages.append(page)
            if on_page is not None:
                on_page()
    return pages


def _ids(pages: list[list[dict]]) -> list[str]:
    return [c["id"] for page in pages for c in page]


def test_pages_cover_every_conversation_in_order_ending_on_a_short_page(emulator: Any) -> None:
    expected = [c["id"] for c in emulator.store.conversations_newest_first()]
    before = emulator.store.request_counts["list"]
    pages = asyncio.run(_walk(emulator, page_size=7, window=1))
    assert [len(p) for p in pages] == [7] * 8 + [4]
    assert _ids(pages) == expected
    assert emulator.store.request_counts["list"] - before == 9


def test_pages_fetched_ahead_come_in_order_with_a_bounded_overshoot(emulator: Any) -> None:
    expected = [c["id"] for c in emulator.store.conversations_newest_first()]
    before = emulator.store.request_counts["list"]
    pages = asyncio.run(_walk(emulator, page_size=7))
    assert [len(p) for p in pages] == [7] * 8 + [4]
    assert _ids(pages) == expected
    assert 9 <= emulator.store.request_counts["list"] - before <= 9 + WINDOW - 1


def test_an_exactly_full_last_page_is_followed_by_one_empty_page(emulator: Any) -> None:
    expected = [c["id"] for c in emulator.store.conversations_newest_first()]
    before = emulator.store.request_counts["list"]
    pages = asyncio.run(_walk(emulator, page_size=20, window=1))
    assert [len(p) for p in pages] == [20, 20, 20]
    assert _ids(pages) == expected
    assert emulator.store.request_counts["list"] - before == 4


def test_fetched_ahead_an_exactly_full_last_page_ends_on_the_empty_one(emulator: Any) -> None:
    expected = [c["id"] for c in emulator.store.conversations_newest_first()]
    before = emulator.store.request_counts["list"]
    pages = asyncio.run(_walk(emulator, page_size=20))
    assert [len(p) for p in pages] == [20, 20, 20]
    assert _ids(pages) == expected
    assert 4 <= emulator.store.request_counts["list"] - before <= 4 + WINDOW - 1


def test_no_conversation_twice_when_new_ones_arrive_at_the_head(make_emulator: Any) -> None:
    emu = make_emulator(conversations=25, seed=9)
    original = [c["id"] for c in emu.store.conversations_newest_first()]
    added: list[str] = []

    def add_two() -> None:
        added.extend(emu.store.add_conversation()["id"] for _ in range(2))

    pages = asyncio.run(_walk(emu, page_size=10, window=1, on_page=add_two))
    walked = _ids(pages)
    assert len(walked) == len(set(walked))
    assert walked == original
    assert len(added) == 2 * len(pages)
    assert emu.store.request_counts["list"] == 3


@pytest.mark.parametrize("every", [1, 4])
def test_fetched_ahead_every_conversation_once_while_new_ones_arrive(
    make_emulator: Any, every: int
) -> None:
    emu = make_emulator(conversations=600, seed=9)
    original = [c["id"] for c in emu.store.conversations_newest_first()]
    received = 0

    def add_one_every_few_pages() -> None:
        nonlocal received
        received += 1
        if received % every == 0:
            emu.store.add_conversation()

    pages = asyncio.run(_walk(emu, page_size=20, on_page=add_one_every_few_pages))
    walked = _ids(pages)
    assert len(walked) == len(set(walked))
    assert set(original) <= set(walked)
    newest_first = [c["id"] for c in emu.store.conversations_newest_first()]
    assert walked == [cid for cid in newest_first if cid in set(walked)]
    # A page showing the list moved cancels the pages fetched ahead (asked again after it):
    # each page is asked for at most twice, plus at most WINDOW - 1 past the end.
    assert emu.store.request_counts["list"] <= 2 * (len(pages) + 1) + WINDOW - 1


def test_an_empty_workspace_yields_no_pages(make_emulator: Any) -> None:
    emu = make_emulator(conversations=0)
    assert asyncio.run(_walk(emu, page_size=10)) == []
    assert emu.store.request_counts["list"] == 1


@pytest.mark.parametrize(("option", "value"), [("page_size", 0), ("window", 0)])
def test_a_page_size_or_window_below_one_is_refused(emulator: Any, option: str, value: int) -> None:
    async def first_page() -> None:
        config = ClientConfig(base_url=emulator.url, api_key="sk-emulator-any")
        async with ConversationsClient(config) as client:
            await anext(iter_conversation_pages(client, **{option: value}))

    with pytest.raises(ValueError, match=f"{option} must be at least 1, got 0"):
        asyncio.run(first_page())

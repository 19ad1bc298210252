"""The list benchmark: an unchanged run's list phase, one page at a time against fetched ahead.

An emulator in its own process (20 ms latency per request) holds 10,000 conversations; the
pager walks its list (page size 100: 100 full pages and an empty one) with window 1, then with
the default window, each timed from the first list request to the last response, and compared
with the sequential bound, pages x latency; a last row asks for all pages at once, the floor
for any pager. The median of ``--repeat`` walks is printed.

    python bench/list_bench.py [--conversations 10000] [--latency-ms 20] [--repeat 5]

Measured 2026-11-28 on 2 cores shared with other jobs (load average 4.6-5.5), median of 9:

    walk                            requests   list phase   / pages x latency
    window 1 (sequential)                101       2.48 s               1.23x
    window 16 (default)                  116  0.27-0.39 s         0.13-0.19x
    page count known, all at once        101  0.33-0.36 s         0.16-0.18x

The fetched-ahead walk is as fast as asking for every page at once would be, were the count
known: on this busy machine both wait on CPU (two processes woken once per page), not on the
latency-bound 101 x 20 ms / 16 = 0.13 s. Its 15 extra requests are the window - 1 past the end.
"""

import argparse
import asyncio
import os
import statistics
import time

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator
from extract.client import ClientConfig, ConversationsClient
from extract.pager import DEFAULT_WINDOW, iter_conversation_pages

PAGE_SIZE = 100
API_KEY = "sk-list-bench"


async def timed_walk(url: str, window: int) -> tuple[float, int, int]:
    """One walk: seconds from its first list request to its last response, requests, ids."""
    config = ClientConfig(base_url=url, api_key=API_KEY)
    async with ConversationsClient(config) as client:
        listed = 0
        started = time.perf_counter()
        async for page in iter_conversation_pages(client, PAGE_SIZE, window=window):
            listed += len(page)
        elapsed = time.perf_counter() - started
        return elapsed, client.stats.requests, listed


async def timed_known_pages(url: str, pages: int) -> tuple[float, int, int]:
    """The floor for any pager: every page asked for at once, as if the count were known."""
    config = ClientConfig(base_url=url, api_key=API_KEY)
    async with ConversationsClient(config) as client:
        started = time.perf_counter()
        bodies = await asyncio.gather(
            *(client.list_conversations(page=page, page_size=PAGE_SIZE) for page in range(pages))
        )
        elapsed = time.perf_counter() - started
        return elapsed, client.stats.requests, sum(len(body) for body in bodies)


def main() -> None:
    """Spawn the emulator, warm it, time each walk, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pages = args.conversations // PAGE_SIZE + 1
    bound_s = pages * args.latency_ms / 1000
    config = EmulatorConfig(
        conversations=args.conversations, latency_ms=args.latency_ms, api_key=API_KEY
    )
    with spawn_emulator(config) as emulator:
        asyncio.run(timed_walk(emulator.url, DEFAULT_WINDOW))  # builds the list bodies once
        print(f"{args.conversations:,} conversations, {args.latency_ms:g} ms latency, ", end="")
        print(f"{pages} pages: sequential bound {bound_s:.2f} s")
        # The walk waits on two processes waking up once per page: a busy machine shows.
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
        print()
        print("| walk | requests | list phase | / pages x latency |")
        print("|---|---:|---:|---:|")
        walks = {
            "window 1 (sequential)": lambda: timed_walk(emulator.url, 1),
            f"window {DEFAULT_WINDOW} (default)": lambda: timed_walk(emulator.url, DEFAULT_WINDOW),
            "page count known, all at once": lambda: timed_known_pages(emulator.url, pages),
        }
        for name, walk in walks.items():
            runs = [asyncio.run(walk()) for _ in range(args.repeat)]
            if any(listed != args.conversations for _, _, listed in runs):
                raise SystemExit(f"{name}: a walk did not list every conversation once")
            median_s = statistics.median(seconds for seconds, _, _ in runs)
            requests = max(count for _, count, _ in runs)
            print(f"| {name} | {requests} | {median_s:.2f} s | {median_s / bound_s:.2f}x |")


if __name__ == "__main__":
    main()

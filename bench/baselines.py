"""Bare fetch loops over one transport each: the floor a transport sets for the export's fetch.

The loops: httpx, httpx over the httpx-aiohttp transport, aiohttp, the official mistralai SDK,
and our own extract client with nothing of the export around it (no Prefect, no storing).
Run as a child process by export_bench.py, so that each loop's CPU time and memory are its own:
`python bench/baselines.py LOOP --base-url URL [--concurrency 16] [--page-size 100]` prints one
JSON line (see `print_result`). Every loop does the export's requests: the list pages in order
until a short page, and history + messages of each listed conversation, `concurrency` in flight.
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aiohttp
import httpx
import orjson

API_KEY = "bench-key"
DETAIL_OPERATIONS = ("history", "messages")

ListIds = Callable[[int, int], Awaitable[list[str]]]
FetchDetail = Callable[[str, str], Awaitable[object]]


async def crawl(
    list_ids: ListIds, fetch_detail: FetchDetail, concurrency: int, page_size: int
) -> int:
    """Page through the list while workers fetch each listed id's details; return requests made."""
    slots = asyncio.Semaphore(concurrency)
    jobs: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
    requests = 0

    async def list_all() -> None:
        nonlocal requests
        page = 0
        while True:
            async with slots:
                ids = await list_ids(page, page_size)
            requests += 1
            for conversation_id in ids:
                for operation in DETAIL_OPERATIONS:
                    jobs.put_nowait((operation, conversation_id))
            if len(ids) < page_size:
                break
            page += 1
        for _ in range(concurrency):
            jobs.put_nowait(None)

    async def work() -> None:
        nonlocal requests
        while (job := await jobs.get()) is not None:
            async with slots:
                await fetch_detail(*job)
            requests += 1

    await asyncio.gather(list_all(), *(work() for _ in range(concurrency)))
    return requests


@asynccontextmanager
async def httpx_loop(base_url: str, concurrency: int) -> AsyncIterator[tuple[ListIds, FetchDetail]]:
    """httpx.AsyncClient on its own connection pool, bodies decoded with orjson."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, headers=headers) as client:
        yield _httpx_calls(client)


@asynccontextmanager
async def httpx_aiohttp_loop(
    base_url: str, concurrency: int
) -> AsyncIterator[tuple[ListIds, FetchDetail]]:
    """httpx.AsyncClient over the httpx-aiohttp transport, bodies decoded with orjson."""
    from httpx_aiohttp import AiohttpTransport

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    headers = {"Authorization": f"Bearer {API_KEY}"}
    transport = AiohttpTransport(client=session)
    async with httpx.AsyncClient(base_url=base_url, transport=transport, headers=headers) as client:
        yield _httpx_calls(client)


def _httpx_calls(client: httpx.AsyncClient) -> tuple[ListIds, FetchDetail]:
    """The list and detail calls of the crawl, over an httpx client."""

    async def list_ids(page: int, page_size: int) -> list[str]:
        response = await client.get(
            "/v1/conversations", params={"page": page, "page_size": page_size}
        )
        response.raise_for_status()
        return [item["id"] for item in orjson.loads(response.content)]

    async def fetch_detail(operation: str, conversation_id: str) -> object:
        response = await client.get(f"/v1/conversations/{conversation_id}/{operation}")
        response.raise_for_status()
        return orjson.loads(response.content)

    return list_ids, fetch_detail


@asynccontextmanager
async def aiohttp_loop(
    base_url: str, concurrency: int
) -> AsyncIterator[tuple[ListIds, FetchDetail]]:
    """aiohttp.ClientSession with a connector of `concurrency` connections, orjson decoding."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as session:

        async def list_ids(page: int, page_size: int) -> list[str]:
            params = {"page": page, "page_size": page_size}
            async with session.get("/v1/conversations", params=params) as response:
                response.raise_for_status()
                return [item["id"] for item in orjson.loads(await response.read())]

        async def fetch_detail(operation: str, conversation_id: str) -> object:
            async with session.get(f"/v1/conversations/{conversation_id}/{operation}") as response:
                response.raise_for_status()
                return orjson.loads(await response.read())

        yield list_ids, fetch_detail


@asynccontextmanager
async def mistralai_loop(
    base_url: str, concurrency: int
) -> AsyncIterator[tuple[ListIds, FetchDetail]]:
    """The official mistralai SDK's async calls, which parse every response into its models."""
    from mistralai.client import Mistral

    async with Mistral(api_key=API_KEY, server_url=base_url) as client:
        conversations = client.beta.conversations

        async def list_ids(page: int, page_size: int) -> list[str]:
            # mistralai 3.7 sends its "unset" sentinel as the metadata filter unless given one.
            items = await conversations.list_async(page=page, page_size=page_size, metadata={})
            return [item.id for item in items]

        async def fetch_detail(operation: str, conversation_id: str) -> object:
            if operation == "history":
                return await conversations.get_history_async(conversation_id=conversation_id)
            return await conversations.get_messages_async(conversation_id=conversation_id)

        yield list_ids, fetch_detail


@asynccontextmanager
async def conversations_client_loop(
    base_url: str, concurrency: int
) -> AsyncIterator[tuple[ListIds, FetchDetail]]:
    """The export's own client (extract.client), without Prefect, flattening or storing."""
    from extract.client import ClientConfig, ConversationsClient

    config = ClientConfig(base_url=base_url, api_key=API_KEY, concurrency=concurrency)
    async with ConversationsClient(config) as client:

        async def list_ids(page: int, page_size: int) -> list[str]:
            items = await client.list_conversations(page=page, page_size=page_size)
            return [item["id"] for item in items]

        async def fetch_detail(operation: str, conversation_id: str) -> object:
            if operation == "history":
                return await client.get_history(conversation_id)
            return await client.get_messages(conversation_id)

        yield list_ids, fetch_detail


LOOPS: dict[str, Callable[[str, int], AbstractAsyncContextManager[tuple[ListIds, FetchDetail]]]] = {
    "httpx": httpx_loop,
    "httpx-aiohttp": httpx_aiohttp_loop,
    "aiohttp": aiohttp_loop,
    "mistralai": mistralai_loop,
    "conversations-client": conversations_client_loop,
}


async def run_loop(loop_name: str, base_url: str, concurrency: int, page_size: int) -> dict:
    """Crawl once with the named loop; time it (wall and CPU) from first request to last."""
    async with LOOPS[loop_name](base_url, concurrency) as (list_ids, fetch_detail):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        requests = await crawl(list_ids, fetch_detail, concurrency, page_size)
        fetch_s = time.perf_counter() - wall_started
        cpu_s = time.process_time() - cpu_started
    return {"requests": requests, "fetch_s": fetch_s, "cpu_s": cpu_s}


def print_result(result: dict) -> None:
    """Print the result as the one JSON line export_bench.py reads (it measures memory itself)."""
    print(json.dumps(result), flush=True)


def main() -> None:
    """Parse the command line, crawl once, print the result line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("loop", choices=sorted(LOOPS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    try:
        result = asyncio.run(run_loop(args.loop, args.base_url, args.concurrency, args.page_size))
    except (httpx.HTTPError, aiohttp.ClientError, OSError) as error:
        sys.exit(f"{args.loop} loop failed: {type(error).__name__}: {error}")
    print_result(result)


if __name__ == "__main__":
    main()

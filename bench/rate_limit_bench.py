"""How well the client's learned pace fits a rate limit it was not told about.

A limiter server (its own process, aiohttp) answers `{}` to at most R requests per second and
429 (no Retry-After) to the rest. The client, untold, fetches N conversations through
`get_conversation` at concurrency 16. Prints, per limiter and R: the share of requests answered
429 (target: at most 5%), the fetch time over N / R (target: at most 1.15), and the pace the
client learned. Two limiters: `window` (at most R in each whole second) and `bucket` (a token
bucket of R tokens refilled at R a second).

    python bench/rate_limit_bench.py [--rates 50,200] [--requests 1000] [--concurrency 16]
"""

import argparse
import asyncio
import multiprocessing
import time
from collections import Counter

import aiohttp
from aiohttp import web

from extract.client import ClientConfig, ConversationsClient

LIMITED = b'{"message":"Requests rate limit exceeded"}'


class Limiter:
    """Decides 200 or 429 for each request, by one of the two rules."""

    def __init__(self, kind: str, rate: float) -> None:
        self.kind = kind
        self.rate = rate
        self.tokens = rate
        self.filled_at = time.monotonic()
        self.window = 0
        self.used = 0

    def admits(self) -> bool:
        """Whether the request arriving now is within the limit."""
        now = time.monotonic()
        if self.kind == "window":
            window = int(now)
            if window != self.window:
                self.window, self.used = window, 0
            self.used += 1
            return self.used <= self.rate
        self.tokens = min(self.rate, self.tokens + (now - self.filled_at) * self.rate)
        self.filled_at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def serve(kind: str, rate: float, port_out: "multiprocessing.Queue[int]") -> None:
    """Run the limiter server until killed; /stats reports its counts."""
    limiter = Limiter(kind, rate)
    statuses: Counter[int] = Counter()

    async def conversation(_: web.Request) -> web.Response:
        status = 200 if limiter.admits() else 429
        statuses[status] += 1
        body = b"{}" if status == 200 else LIMITED
        return web.Response(status=status, body=body, content_type="application/json")

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({str(k): v for k, v in statuses.items()})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v1/conversations/{cid}", conversation)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def fetch_all(url: str, requests: int, concurrency: int) -> tuple[float, float | None]:
    """Seconds to fetch ``requests`` conversations, and the pace the client learned."""
    config = ClientConfig(base_url=url, api_key="bench-key", concurrency=concurrency)
    async with ConversationsClient(config) as client:
        began = time.perf_counter()
        await asyncio.gather(*(client.get_conversation(f"c{i}") for i in range(requests)))
        elapsed = time.perf_counter() - began
    return elapsed, client.stats.pace_rps


async def server_counts(url: str) -> dict[str, int]:
    """The limiter's counts of 200s and 429s."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/stats") as response:
        return await response.json()


def measure(kind: str, rate: float, requests: int, concurrency: int) -> str:
    """One markdown row: limiter, R, N, 429 share, fetch time over N / R, learned pace."""
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(kind, rate, ports), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        elapsed, pace = asyncio.run(fetch_all(url, requests, concurrency))
        counts = asyncio.run(server_counts(url))
    finally:
        server.terminate()
        server.join()
    limited, answered = counts.get("429", 0), counts.get("200", 0)
    share = limited / (limited + answered)
    ratio = elapsed / (requests / rate)
    shown_pace = "-" if pace is None else f"{pace:.1f}"
    return (
        f"| {kind} | {rate:g} | {requests} | {limited} | {share:.1%} | {elapsed:.2f} s"
        f" | {ratio:.3f} | {shown_pace} |"
    )


def main() -> None:
    """Parse the options, run every limiter at every rate, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limiters", default="window,bucket")
    options = parser.parse_args()
    print("| limiter | R | N | 429s | 429 share | fetch | fetch / (N/R) | learned pace |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in options.limiters.split(","):
        for rate in (float(r) for r in options.rates.split(",")):
            print(measure(kind, rate, options.requests, options.concurrency), flush=True)


if __name__ == "__main__":
    main()

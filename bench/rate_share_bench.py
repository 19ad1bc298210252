"""How well a Prefect rate limit shares one request rate between workers, by chunk size.

A temporary Prefect server holds a global concurrency limit of LIMIT slots decaying at R a
second. W worker processes each take N tokens from it through flows.export.rate_share.SharedRate
(no HTTP: the token source alone), all at once. Prints, per chunk size (slots per call to
Prefect's API): the tokens' overall rate over R (at most 1 is within the limit; near 1 is the
limit used well), the most tokens handed out within any one second (at most LIMIT + R), and
calls to Prefect per token.

    python bench/rate_share_bench.py [--rate 50] [--limit 50] [--workers 2] [--tokens 300]
                                     [--chunks 1,auto]
"""

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="convo-etl-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from rich.console import Console

from flows.export.rate_share import SharedRate, chunk_size
from flows.prefect_api import prefect_api

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from arrivals import most_in_one_second

LIMIT_NAME = "bench-shared-rate"


def take_tokens(chunk: int, tokens: int, out: "multiprocessing.Queue") -> None:
    """One worker: take ``tokens`` tokens, ``chunk`` slots per call; report when each came."""

    async def run() -> tuple[list[float], int]:
        shared = SharedRate(LIMIT_NAME, chunk)
        times = []
        for _ in range(tokens):
            await shared.take()
            times.append(time.time())
        return times, shared.chunks_taken

    out.put(asyncio.run(run()))


async def reset_limit(limit: int, rate: float) -> None:
    """(Re)create the limit, with no slot taken."""
    async with get_client() as client:
        with contextlib.suppress(ObjectNotFound):
            await client.delete_global_concurrency_limit_by_name(LIMIT_NAME)
        await client.upsert_global_concurrency_limit_by_name(LIMIT_NAME, limit, rate)


def measure(chunk: int, options: argparse.Namespace) -> str:
    """One markdown row for one chunk size."""
    asyncio.run(reset_limit(options.limit, options.rate))
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [
        context.Process(target=take_tokens, args=(chunk, options.tokens, out))
        for _ in range(options.workers)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    times = [at for taken, _ in results for at in taken]
    calls = sum(chunks for _, chunks in results)
    # From the first token to the last: a full first burst of `limit` is free, then R a second.
    span = max(times) - min(times)
    achieved = (len(times) - options.limit) / span if span > 0 else float("inf")
    return (
        f"| {chunk} | {options.workers} | {len(times)} | {achieved / options.rate:.2f} "
        f"| {most_in_one_second(times)} | {options.limit + options.rate:g} "
        f"| {calls / len(times):.3f} |"
    )


def main() -> None:
    """Start a temporary Prefect server, run every chunk size, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--chunks", default="1,auto")
    options = parser.parse_args()
    chunks = [
        chunk_size(options.limit, options.rate) if chunk == "auto" else int(chunk)
        for chunk in options.chunks.split(",")
    ]
    with prefect_api(Console(stderr=True)) as api_url:
        os.environ["PREFECT_API_URL"] = api_url  # for the workers, which import Prefect anew
        print(
            f"limit {options.limit} slots, decay {options.rate:g}/s; "
            "rate after the first burst, over R:"
        )
        print("| chunk | workers | tokens | rate / R | most in 1 s | bound | Prefect calls/token |")
        print("|---|---|---|---|---|---|---|")
        for chunk in chunks:
            print(measure(chunk, options), flush=True)


if __name__ == "__main__":
    main()

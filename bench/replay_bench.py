"""How close `convo-etl replay` gets to the latency bound, next to bare streaming loops.

The bare loops (`--bare`): aiohttp reading the SSE itself, the floor this machine allows (the
client streams on aiohttp), and httpx + httpx-sse, the obvious way to write it (slow at 64 in
flight: ~7x the bound, so not run by default). They and the replay stream the same prompts (1,000
at 32 in flight by default; issue 13's scale is `--rows 10000 --in-flight 64`) against one emulator
running in its own process (with a fixed per-request latency and per-token delay). The bound is
what that many perfect clients would need: the sum of every stream's server time divided by the
number in flight. The replay's streaming part (first request to last result) is shown apart from
what a run adds before it (Prefect's flow run, parsing the CSV, opening the warehouse) and after
it (storing the last batch, recording the run).
Memory: this process's RSS, sampled while the replay runs, at each quarter of it and at its peak
(flat: the last quarters hold no more than the first).

    python bench/replay_bench.py [--rows 1000] [--in-flight 32] [--bare aiohttp,httpx-sse]
"""

import argparse
import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="convo-etl-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MISTRAL_API_KEY", "bench-key")

import aiohttp
import httpx
import orjson
import psutil
from httpx_sse import aconnect_sse
from rich.console import Console

from emulator.config import EmulatorConfig
from emulator.replies import reply_pieces, reply_text
from emulator.server import spawn_emulator
from flows.prefect_api import prefect_api
from flows.replay.flow import replay_flow
from load.warehouse import open_warehouse

LATENCY_MS = 50.0
TOKEN_DELAY_MS = 5.0
MODEL = "mistral-small-latest"


def bench_prompts(rows: int) -> list[str]:
    """Distinct prompts, so every reply differs (and so does its length)."""
    return [
        f"Prompt {n}: explain item {n * 7919 % 1000} of the catalogue briefly." for n in range(rows)
    ]


def write_prompt_csv(prompts: list[str], path: Path) -> None:
    """The prompt set as the replay reads it."""
    path.write_text("prompt\n" + "".join(f"{p}\n" for p in prompts), encoding="utf-8")


def latency_bound_s(prompts: list[str], in_flight: int) -> tuple[float, float]:
    """(latency + tokens x token delay) x rows / in-flight, with the mean token count per reply.

    A stream of n deltas has n + 2 frames and n + 1 waits between them.
    """
    waits = [len(reply_pieces(reply_text(p))) + 1 for p in prompts]
    server_ms = sum(LATENCY_MS + w * TOKEN_DELAY_MS for w in waits)
    return server_ms / 1000.0 / in_flight, sum(waits) / len(waits) - 1


async def bare_sse_loop(url: str, prompts: list[str], in_flight: int) -> tuple[float, int]:
    """Stream every prompt with httpx + httpx-sse and nothing else; returns (seconds, ok)."""
    slots = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    headers = {"Authorization": f"Bearer {os.environ['MISTRAL_API_KEY']}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers) as client:

        async def stream(prompt: str) -> str:
            body = {"inputs": prompt, "model": MODEL, "stream": True}
            text = []
            async with aconnect_sse(client, "POST", "/v1/conversations", json=body) as source:
                async for sse in source.aiter_sse():
                    if sse.event == "message.output.delta":
                        text.append(sse.json()["content"])
            return "".join(text)

        async def one(prompt: str) -> bool:
            # Once more on a dropped connection (a kept-alive one the server closed at 64 in
            # flight once failed the whole loop); the emulator stores nothing, so nothing doubles.
            async with slots:
                try:
                    return await stream(prompt) == reply_text(prompt)
                except httpx.TransportError:
                    return await stream(prompt) == reply_text(prompt)

        started = time.perf_counter()
        results = await asyncio.gather(*(one(p) for p in prompts))
        return time.perf_counter() - started, sum(results)


async def bare_aiohttp_loop(url: str, prompts: list[str], in_flight: int) -> tuple[float, int]:
    """Stream every prompt on aiohttp, splitting the SSE by hand; returns (seconds, ok)."""
    slots = asyncio.Semaphore(in_flight)
    headers = {
        "Authorization": f"Bearer {os.environ['MISTRAL_API_KEY']}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def stream(prompt: str) -> str:
            body = orjson.dumps({"inputs": prompt, "model": MODEL, "stream": True})
            text, pending = [], b""
            async with session.post(url + "/v1/conversations", data=body) as response:
                async for chunk in response.content.iter_any():
                    *blocks, pending = (pending + chunk).split(b"\n\n")
                    for line in (line for block in blocks for line in block.split(b"\n")):
                        if line.startswith(b"data:"):
                            data = orjson.loads(line[5:])
                            if data.get("type") == "message.output.delta":
                                text.append(data["content"])
            return "".join(text)

        async def one(prompt: str) -> bool:
            async with slots:
                return await stream(prompt) == reply_text(prompt)

        started = time.perf_counter()
        results = await asyncio.gather(*(one(p) for p in prompts))
        return time.perf_counter() - started, sum(results)


BARE_LOOPS = {"aiohttp": bare_aiohttp_loop, "httpx-sse": bare_sse_loop}


async def replay_run(
    csv_path: Path, data_dir: Path, url: str, run_id: str, in_flight: int
) -> tuple[float, int]:
    """One replay flow run; returns (seconds, ok rows)."""
    started = time.perf_counter()
    summary = await replay_flow(
        str(csv_path),
        str(data_dir),
        base_url=url,
        run_id=run_id,
        concurrency=in_flight,
        model=MODEL,
    )
    return time.perf_counter() - started, summary.ok


def streaming_span(data_dir: Path, run_id: str) -> tuple[datetime, datetime]:
    """When the first request was sent and the last result finished."""
    con = open_warehouse(data_dir, read_only=True)
    try:
        first, last = con.execute(
            "SELECT min(started_at), max(finished_at) FROM replay_results WHERE run_id = $run_id",
            {"run_id": run_id},
        ).fetchone()
    finally:
        con.close()
    return first, last


@contextmanager
def rss_samples(interval_s: float = 0.2) -> Iterator[list[float]]:
    """This process's RSS in MB, sampled every ``interval_s`` while the block runs."""
    samples: list[float] = []
    stop = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not stop.wait(interval_s):
            samples.append(me.memory_info().rss / 2**20)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield samples
    finally:
        stop.set()
        sampler.join()


def memory_line(samples: list[float]) -> str:
    """The RSS at the end of each quarter of the run, and its peak."""
    quarters = [samples[max(len(samples) * q // 4 - 1, 0)] for q in (1, 2, 3, 4)]
    cells = ", ".join(f"{q * 25}% {mb:.0f}" for q, mb in enumerate(quarters, start=1))
    return f"replay RSS (MB)        {cells}; peak {max(samples):.0f}"


def main() -> None:
    """Warm Prefect up, then time the replay and the bare loop on the same emulator."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument(
        "--bare", default="aiohttp", help=f"bare loops to run, of {', '.join(BARE_LOOPS)}"
    )
    args = parser.parse_args()
    bare_names = [name for name in args.bare.split(",") if name]
    unknown = sorted(set(bare_names) - set(BARE_LOOPS))
    if unknown:
        parser.error(f"--bare: unknown loops {', '.join(unknown)}")
    rows, in_flight = args.rows, args.in_flight
    prompts = bench_prompts(rows)
    bound_s, mean_tokens = latency_bound_s(prompts, in_flight)
    config = EmulatorConfig(conversations=1, latency_ms=LATENCY_MS, token_delay_ms=TOKEN_DELAY_MS)
    with tempfile.TemporaryDirectory() as work, spawn_emulator(config) as emu:
        root = Path(work)
        csv_path, warm_path = root / "prompts.csv", root / "warm.csv"
        write_prompt_csv(prompts, csv_path)
        write_prompt_csv(prompts[:1], warm_path)
        # Prefect's temporary server starts, and its first flow run warms up, before the timing.
        with prefect_api(Console(stderr=True)):
            asyncio.run(replay_run(warm_path, root / "warm", emu.url, "warm-up", in_flight))
            with rss_samples() as rss:
                called = datetime.now(UTC)
                replay_s, replay_ok = asyncio.run(
                    replay_run(csv_path, root / "data", emu.url, "bench", in_flight)
                )
                returned = datetime.now(UTC)
        first_sent, last_finished = streaming_span(root / "data", "bench")
        stream_s = (last_finished - first_sent).total_seconds()
        bare = {
            name: asyncio.run(BARE_LOOPS[name](emu.url, prompts, in_flight)) for name in bare_names
        }
    print(
        f"rows {rows}, in flight {in_flight}, latency {LATENCY_MS:.0f} ms, "
        f"token delay {TOKEN_DELAY_MS:.0f} ms, mean tokens per reply {mean_tokens:.1f}"
    )
    print(f"latency bound          {bound_s:6.2f} s")
    for name, (bare_s, bare_ok) in bare.items():
        label = f"bare {name} loop"
        print(f"{label:<22} {bare_s:6.2f} s  ({bare_s / bound_s:.2f}x bound, {bare_ok} ok)")
    versus = "".join(f", {replay_s / s:.2f}x bare {name}" for name, (s, _) in bare.items())
    print(
        f"convo-etl replay       {replay_s:6.2f} s  ({replay_s / bound_s:.2f}x bound{versus}, "
        f"{replay_ok} ok)"
    )
    print(f"  of which streaming   {stream_s:6.2f} s  ({stream_s / bound_s:.2f}x bound)")
    before_s = (first_sent - called).total_seconds()
    after_s = (returned - last_finished).total_seconds()
    print(f"  before the first send {before_s:5.2f} s  (the flow run, the CSV, the warehouse)")
    print(f"  after the last result {after_s:5.2f} s  (the last batch stored, the run recorded)")
    print(memory_line(rss))


if __name__ == "__main__":
    main()

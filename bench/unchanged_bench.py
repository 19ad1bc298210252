"""The unchanged run's memory at scale: `convo-etl export` when nothing changed, 20,000 against
200,000 conversations (issue 13: under 400 MB at 200,000, and the growth printed).

For each size, an emulator in its own process (20 ms latency) and a warehouse seeded with every
listed conversation (its attributes and empty histories, stored a few thousand at a time by the
export's own store function: what a previous run would have left, without fetching every
history). Then one `convo-etl export` runs against it, measured: it lists everything and fetches
nothing. Its export_runs row is checked, so a run that fetched anything again stops the bench.

    python bench/unchanged_bench.py [--conversations 20000,200000]
"""

import argparse
import asyncio
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psutil
from export_bench import EXPORT, MEMORY_BUDGET_MB, Row, Workload, export_row

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator
from extract.client import ClientConfig, ConversationsClient
from extract.pager import iter_conversation_pages
from flows.export.fetch import FetchedBatch, FetchedConversation
from flows.export.store import store_fetched_batch
from flows.settings import DEFAULT_WORKSPACE, WRITER_DUCKDB_LIMITS
from load.warehouse import open_warehouse

PAGE_SIZE = 100
LATENCY_MS = 20
CONCURRENCY = 16
SEED_RUN = "seed"
SEED_BLOCK = 5_000
API_KEY = "bench-key"
EMULATOR_STARTUP_S = 600  # 200,000 synthetic conversations are built before it answers
EMPTY_HISTORY = b'{"entries": []}'
EMPTY_MESSAGES = b'{"messages": []}'
RUN_COUNTS = "SELECT listed, fetched, unchanged FROM export_runs WHERE run_id <> ?"


async def seed(url: str, data_dir: Path) -> int:
    """Store every listed conversation's attributes (no entries) as a previous run would have."""
    warehouse = open_warehouse(data_dir, limits=WRITER_DUCKDB_LIMITS)
    stored = 0
    block: list[dict] = []
    batch_number = 0
    try:
        config = ClientConfig(base_url=url, api_key=API_KEY, concurrency=CONCURRENCY)
        async with ConversationsClient(config) as client:
            async for page in iter_conversation_pages(client, PAGE_SIZE):
                block += page
                if len(block) >= SEED_BLOCK:
                    stored += store_block(warehouse, block, data_dir, batch_number)
                    block, batch_number = [], batch_number + 1
        stored += store_block(warehouse, block, data_dir, batch_number)
    finally:
        warehouse.close()
    return stored


def store_block(
    warehouse: duckdb.DuckDBPyConnection, block: list[dict], data_dir: Path, number: int
) -> int:
    """Store a block of listed conversations with empty histories, as batch ``number``."""
    fetched = [FetchedConversation(item, EMPTY_HISTORY, EMPTY_MESSAGES) for item in block]
    batch = FetchedBatch(number, fetched, [], datetime.now(UTC))
    counts = store_fetched_batch(warehouse, batch, SEED_RUN, data_dir, DEFAULT_WORKSPACE)
    return counts.conversations


def run_counts(data_dir: Path) -> tuple[int, int, int]:
    """The export run's listed, fetched and unchanged counts (the seed wrote no run row)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        rows = connection.execute(RUN_COUNTS, [SEED_RUN]).fetchall()
    if len(rows) != 1 or None in rows[0]:
        sys.exit(f"{EXPORT} left {len(rows)} export_runs rows with counts, not one")
    return rows[0]


def measure(conversations: int) -> Row:
    """Seed a warehouse of ``conversations``, then run the export against it, unchanged."""
    prefect_home = Path(tempfile.gettempdir()) / "convo-etl-bench-prefect"
    with tempfile.TemporaryDirectory(prefix="convo-etl-unchanged-") as tmp:
        work_dir = Path(tmp)
        data_dir = work_dir / "data"
        config = EmulatorConfig(conversations=conversations, latency_ms=LATENCY_MS, api_key=API_KEY)
        with spawn_emulator(config, startup_timeout_s=EMULATOR_STARTUP_S) as emulator:
            stored = asyncio.run(seed(emulator.url, data_dir))
            print(f"  seeded {stored:,} conversations", file=sys.stderr, flush=True)
            workload = Workload(
                emulator.url,
                psutil.Process(emulator.pid),
                conversations,
                LATENCY_MS,
                CONCURRENCY,
                work_dir,
            )
            row = export_row(workload, prefect_home, data_dir)
        listed, fetched, unchanged = run_counts(data_dir)
    print(
        f"  {EXPORT}: listed {listed:,}, fetched {fetched:,}, unchanged {unchanged:,}",
        file=sys.stderr,
        flush=True,
    )
    if listed != conversations or fetched or unchanged != conversations:
        sys.exit(
            f"{EXPORT} of an unchanged {conversations:,}: listed {listed:,}, fetched "
            f"{fetched:,}, unchanged {unchanged:,}; expected all listed, none fetched"
        )
    return row


def sizes(text: str) -> list[int]:
    """Comma-separated conversation counts, each at least 1."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("every size must be at least 1")
    return counts


def main() -> None:
    """Measure each size (printed as measured), then the growth from the first to the last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=sizes, default=[20_000, 200_000])
    args = parser.parse_args()
    measured: dict[int, Row] = {}
    for size in args.conversations:
        row = measure(size)
        measured[size] = row
        verdict = "within" if row.peak_rss_mb < MEMORY_BUDGET_MB else "OVER"
        print(
            f"{EXPORT}, {size:,} unchanged: peak RSS {row.peak_rss_mb:.0f} MB, {verdict} the "
            f"{MEMORY_BUDGET_MB} MB budget; list phase {row.fetch_s:.2f} s "
            f"({row.requests:,} requests); total {row.total_s:.2f} s",
            flush=True,
        )
    first, last = args.conversations[0], args.conversations[-1]
    if len(measured) > 1:
        growth = measured[last].peak_rss_mb - measured[first].peak_rss_mb
        print(f"{EXPORT}: {first:,} -> {last:,} conversations: {growth:+.0f} MB peak RSS")


if __name__ == "__main__":
    main()

"""Bytes stored against the API's bytes: the warehouse, its Parquet parts and the lake.

One emulator (its own process) serves N conversations; `convo-etl export` copies them into a
fresh data dir; the bench then reads every body the export read (each list page, each
conversation's history and messages) and sums their bytes, the API JSON. It prints the bytes
of warehouse.duckdb, of the Parquet parts and, when load.lake imports (the lake extra), of a
Delta lake at a local path filled with the same batches, each with its ratio to the API JSON
(issue 12: each at most 1.0).

    python bench/size_bench.py [--conversations 2000] [--batch-size 250]
"""

import argparse
import asyncio
import tempfile
from pathlib import Path

import httpx
import psutil
from export_bench import CONVO_ETL, check_exit, child_env
from measure_process import run_measured

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator
from transform.bodies import flatten_bodies

PAGE_SIZE = 100
EXPORT_TABLES = ("conversations", "entries", "messages", "content_chunks")


async def api_bodies(url: str) -> tuple[int, list[tuple[dict, bytes, bytes]]]:
    """The bytes of every list page, history and messages body, and the fetched triples."""
    total = 0
    fetched = []
    headers = {"Authorization": "Bearer bench-key"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        listed: list[dict] = []
        for page in range(10**6):
            answer = await client.get(
                "/v1/conversations", params={"page": page, "page_size": PAGE_SIZE}
            )
            total += len(answer.content)
            answer.raise_for_status()
            items = answer.json()
            listed += items
            if len(items) < PAGE_SIZE:
                break
        for conversation in listed:
            cid = conversation["id"]
            history = (await client.get(f"/v1/conversations/{cid}/history")).content
            messages = (await client.get(f"/v1/conversations/{cid}/messages")).content
            total += len(history) + len(messages)
            fetched.append((conversation, history, messages))
    return total, fetched


def tree_bytes(path: Path, pattern: str = "**/*") -> int:
    """The bytes of every file under ``path`` matching ``pattern``."""
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())


def lake_bytes(work: Path, fetched: list, batch_size: int) -> int | str:
    """The bytes of a local Delta lake holding the same batches, or why it was not measured."""
    try:
        from load.lake.tables import open_lake, upsert_batch
    except ImportError as error:
        return f"not measured: load.lake does not import ({error})"
    path = work / "lake"
    lake = open_lake(str(path))
    for start in range(0, len(fetched), batch_size):
        tables, _ = flatten_bodies(fetched[start : start + batch_size], "size-bench")
        upsert_batch(lake, "default", tables)
    return tree_bytes(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=250)
    args = parser.parse_args()
    config = EmulatorConfig(conversations=args.conversations, seed=0)
    with tempfile.TemporaryDirectory(prefix="size-bench-") as tmp, spawn_emulator(config) as emu:
        work = Path(tmp)
        data_dir = work / "data"
        command = [
            str(CONVO_ETL),
            "export",
            f"--data-dir={data_dir}",
            f"--base-url={emu.url}",
            f"--batch-size={args.batch_size}",
            "--no-progress",
        ]
        env = child_env(MISTRAL_API_KEY="bench-key", PREFECT_HOME=str(work / "prefect"))
        check_exit(run_measured(command, env, psutil.Process(emu.pid), cwd=work), "export")
        api, fetched = asyncio.run(api_bodies(emu.url))
        stored = {
            "warehouse.duckdb": tree_bytes(data_dir, "warehouse.duckdb*"),
            "Parquet parts": sum(
                tree_bytes(data_dir / "parquet" / table, "*.parquet") for table in EXPORT_TABLES
            ),
            "Delta lake (local)": lake_bytes(work, fetched, args.batch_size),
        }
    print(f"{args.conversations:,} conversations; API JSON read by the export: {api / 1e6:.1f} MB")
    print(f"{'stored':<20} {'MB':>8} {'vs API JSON':>12}")
    for name, size in stored.items():
        if isinstance(size, str):
            print(f"{name:<20} {size}")
        else:
            print(f"{name:<20} {size / 1e6:>8.1f} {size / api:>11.2f}x")


if __name__ == "__main__":
    main()

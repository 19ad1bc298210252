"""`convo-etl export` into a lake (Delta tables on moto's S3 server, on loopback) against the
local default (DuckDB + Parquet), side by side on the same emulator, and the bytes each keeps.

For each target: a first export (everything fetched), then a second one (nothing changed: it
lists only). Prints wall time of each child process (Prefect's start-up included), the flow's
own duration and its fetch phase (first request to last response), lake/local ratios, and the
bytes stored against the API JSON's bytes (list items, histories and messages bodies). Run on a
shared machine: read the ratios, not the seconds.

    python bench/lake_export_bench.py [--conversations 2000] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from lake_bench import stored_bytes
from lake_support import create_bucket, s3_server

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator
from emulator.store import ConversationStore

CONVO_ETL = Path(sys.executable).parent / "convo-etl"
BUCKET = "lake-export-bench"
RUN_COLUMNS = "fetched, duration_s, epoch(fetch_finished) - epoch(fetch_started)"


def api_json_bytes(conversations: int, seed: int) -> int:
    """Bytes of the API's JSON for these conversations: list items, histories, messages."""
    store = ConversationStore(conversations, seed)
    total = 0
    for header in store.conversations_newest_first():
        cid = header["id"]
        total += len(store.conversation_json(cid) or b"")
        total += len(store.history_json(cid) or b"") + len(store.messages_json(cid) or b"")
    return total


def export(data_dir: str, url: str, env: dict[str, str]) -> float:
    """Wall seconds of one `convo-etl export` child into ``data_dir``."""
    started = time.perf_counter()
    args = [str(CONVO_ETL), "export", "--data-dir", data_dir, "--base-url", url, "--no-progress"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"export into {data_dir} failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started


def last_runs(connection: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(fetched, flow seconds, fetch seconds) of each run, oldest first."""
    return connection.execute(
        f"SELECT {RUN_COLUMNS} FROM export_runs ORDER BY started_at"
    ).fetchall()


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from load.lake.reading import lake_connection

    config = EmulatorConfig(
        conversations=args.conversations, seed=args.seed, latency_ms=args.latency_ms
    )
    with (
        tempfile.TemporaryDirectory() as scratch,
        s3_server() as endpoint,
        spawn_emulator(config) as emu,
    ):
        create_bucket(endpoint, BUCKET)
        env = {**os.environ, "MISTRAL_API_KEY": "bench", "PREFECT_HOME": f"{scratch}/prefect"}
        env.pop("PREFECT_API_URL", None)
        local_dir, lake_url = f"{scratch}/data", f"s3://{BUCKET}/lake"
        walls = {}
        for run in ("first", "second"):
            walls["local", run] = export(local_dir, emu.url, env)
            walls["lake", run] = export(lake_url, emu.url, env)
        with duckdb.connect(f"{local_dir}/warehouse.duckdb", read_only=True) as warehouse:
            local_runs = last_runs(warehouse)
        lake_runs = last_runs(lake_connection(lake_url))
        json_bytes = api_json_bytes(args.conversations, args.seed)
        local_bytes = folder_bytes(Path(local_dir))
        lake_bytes = stored_bytes(endpoint, BUCKET)
    print(
        f"{args.conversations} conversations, {args.latency_ms:g} ms latency; "
        f"API JSON {json_bytes / 1e6:.1f} MB"
    )
    print("run     target  wall s  flow s  fetch s  fetched  lake/local wall  flow  fetch")
    for index, run in enumerate(("first", "second")):
        for target, runs in (("local", local_runs), ("lake", lake_runs)):
            fetched, flow_s, fetch_s = runs[index]
            line = f"{run:<7} {target:<6} {walls[target, run]:7.1f} {flow_s:7.1f} {fetch_s:8.1f}"
            line += f" {fetched:8d}"
            if target == "lake":
                local = local_runs[index]
                line += f"  {walls['lake', run] / walls['local', run]:14.2f}"
                line += f"  {flow_s / local[1]:4.2f}  {fetch_s / max(local[2], 1e-9):5.2f}"
            print(line)
    for target, size in (
        ("local (warehouse + parquet)", local_bytes),
        ("lake (bucket)", lake_bytes),
    ):
        print(f"{target}: {size / 1e6:.1f} MB, {size / json_bytes:.2f} x the API JSON")


if __name__ == "__main__":
    main()

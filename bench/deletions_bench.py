"""The deletion marking's memory at scale: listed ids in a DuckDB temp table against a Python set.

A warehouse of ``--conversations`` stored conversations (synthetic rows, written once), then, in
a fresh process per variant, the marking step as an export runs it: every id but ``--absent``
of them recorded a page of 100 at a time, then the absent ones found and marked. The peak RSS
(VmHWM) above the process's RSS once the warehouse is open is the step's cost. The `set`
variant keeps the ids in a Python set instead, and `stored` loads the incremental run's
stored updated_at map, for scale.

    python bench/deletions_bench.py [--conversations 200000] [--absent 100]

Measured 2026-11-28 on 2 shared cores, writer limits (64 MB, one thread), 100 absent:

    conversations   table (mark step)       set of ids        stored updated_at map
          200,000   0.25 s  +44 MB          0.19 s  +26 MB     0.60 s  +64 MB
        1,000,000   1.46 s  +81 MB          0.75 s  +124 MB    3.43 s  +270 MB
        2,000,000   ~3 s    +83 MB          (~250 MB)          -

The table's cost levels off at DuckDB's memory limit plus the anti join (at 1,000,000: +56 MB
once every id is in, +81 MB at the anti join's peak, +40 MB after); a set grows with the
account. Below ~500,000 conversations the set would be the smaller. The incremental run's own
stored updated_at map (and the pager's set of seen ids) are the larger costs at scale.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from flows.settings import WRITER_DUCKDB_LIMITS
from load.deletions import ListedIds
from load.warehouse import open_warehouse, stored_updated_at
from transform.updated_at_index import UpdatedAtIndex

PAGE = 100
VARIANTS = ("table", "set", "stored")


def conversation_id(number: int) -> str:
    """A synthetic id shaped like the API's (conv_ and 32 hex digits)."""
    return f"conv_{number:032x}"


def build(data_dir: Path, conversations: int) -> None:
    """A warehouse holding ``conversations`` minimal conversation rows (DuckDB's own limits: one
    insert of a million rows exceeds the writer's 64 MB, which the export's batches never do)."""
    con = open_warehouse(data_dir)
    con.execute(
        "INSERT INTO conversations (id, updated_at, raw, first_export_run, last_export_run) "
        "SELECT printf('conv_%032x', i), now(), '{}', 'bench', 'bench' FROM range(?) t(i)",
        [conversations],
    )
    con.close()


def peak_rss_mb() -> float:
    """The kernel's high-water mark of this process's resident memory, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(variant: str, data_dir: Path, conversations: int, absent: int) -> None:
    """Run one variant in this process and print its line."""
    con = open_warehouse(data_dir, limits=WRITER_DUCKDB_LIMITS)
    base = psutil.Process().memory_info().rss / 2**20
    started = time.perf_counter()
    listed_numbers = range(absent, conversations)
    if variant == "table":
        listed = ListedIds(con)
        for start in range(0, len(listed_numbers), PAGE):
            listed.add([conversation_id(n) for n in listed_numbers[start : start + PAGE]])
        found = listed.absent()
        marked = listed.mark_deleted(found, "bench-run", datetime.now(UTC))
        listed.close()
        result = f"{len(found)} absent, {marked} marked"
    elif variant == "set":
        seen: set[str] = set()
        for start in range(0, len(listed_numbers), PAGE):
            seen.update(conversation_id(n) for n in listed_numbers[start : start + PAGE])
        result = f"{len(seen)} ids held"
    else:
        stored = UpdatedAtIndex(stored_updated_at(con))
        result = f"{len(stored)} stored updated_at"
    elapsed = time.perf_counter() - started
    extra = peak_rss_mb() - base
    print(f"{variant:8} {result:30} {elapsed:7.2f} s   peak RSS +{extra:6.1f} MB")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200_000)
    parser.add_argument("--absent", type=int, default=100)
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    if args.variant:
        measure(args.variant, args.data_dir, args.conversations, args.absent)
        return
    with tempfile.TemporaryDirectory(prefix="deletions-bench-") as temp:
        data_dir = Path(temp)
        build(data_dir, args.conversations)
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--data-dir", str(data_dir)]
            command += ["--conversations", str(args.conversations), "--absent", str(args.absent)]
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()

"""What reading through the writer's socket costs, beside opening the file read-only.

A warehouse of ``--conversations`` conversations with ``--entries`` entries each (synthetic
rows, written once). Then, alternating so both see the same load: a reader (load.read_client
.WarehouseReader, as `convo-etl sql` opens it) runs each query on the free file (its own
read-only open: open, query, close), and again while another process holds the file for writing
and serves reads (load.read_server.serving_reads): connect, query, Arrow IPC back. The median
of ``--repeat`` runs of each, and their ratio, side by side; the first row times the whole
`convo-etl sql` command (a child process) both ways.

    python bench/read_socket_bench.py [--conversations 2000] [--entries 40] [--repeat 15]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load.read_client import WarehouseReader
from load.warehouse import open_warehouse

CONVO_ETL = str(Path(sys.executable).parent / "convo-etl")
# The whole command, start-up included: a child process per query.
CLI_QUERY = "select count(*) from conversations"
QUERIES = {
    "convo-etl sql": CLI_QUERY,
    "count": "SELECT count(*) FROM conversations",
    "summary view": "SELECT * FROM model_agent_summary",
    "10k entries": "SELECT * FROM entries LIMIT 10000",
    "all entries": "SELECT * FROM entries",
}
_WRITER = """
import sys
from load.read_server import serving_reads
from load.warehouse import open_warehouse
con = open_warehouse(sys.argv[1], limits={"memory_limit": "64MB", "threads": 1})
with serving_reads(con, sys.argv[1]):
    print("serving", flush=True)
    sys.stdin.readline()
con.close()
"""


def build(data_dir: Path, conversations: int, entries: int) -> None:
    """A warehouse of synthetic conversations and entries (no history JSON: rows, not bytes)."""
    con = open_warehouse(data_dir)
    con.execute(
        "INSERT INTO conversations (id, updated_at, raw, first_export_run, last_export_run) "
        "SELECT printf('conv_%032x', i), now(), '{}', 'bench', 'bench' FROM range(?) t(i)",
        [conversations],
    )
    con.execute(
        "INSERT INTO entries (conversation_id, id, position, type, text, raw, export_run)"
        " SELECT printf('conv_%032x', i // $n), printf('msg_%d', i), i % $n, 'message.output',"
        " repeat('t', 200), '{}', 'bench' FROM range($total) t(i)",
        {"n": entries, "total": conversations * entries},
    )
    con.close()


def timed(data_dir: Path, query: str) -> tuple[float, int]:
    """Seconds to open a reader, run ``query`` and fetch every row; and the row count."""
    started = time.perf_counter()
    if query == CLI_QUERY:
        subprocess.run([CONVO_ETL, "sql", query, "--data-dir", str(data_dir)], check=True,
                       capture_output=True)  # fmt: skip
        return time.perf_counter() - started, 1
    with WarehouseReader(data_dir) as reader:
        rows = len(reader.execute(query).fetchall())
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        build(data_dir, args.conversations, args.entries)
        direct: dict[str, list[float]] = {name: [] for name in QUERIES}
        served: dict[str, list[float]] = {name: [] for name in QUERIES}
        rows: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, query in QUERIES.items():
                seconds, rows[name] = timed(data_dir, query)
                direct[name].append(seconds)
            writer = subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(data_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert writer.stdout is not None and writer.stdin is not None
            assert writer.stdout.readline().strip() == "serving"
            for name, query in QUERIES.items():
                served[name].append(timed(data_dir, query)[0])
            writer.stdin.write("\n")
            writer.stdin.close()
            writer.wait()
    print(
        f"{args.conversations} conversations x {args.entries} entries, "
        f"median of {args.repeat}; rows but the first: reader in-process (no CLI start-up)"
    )
    print(f"{'query':<14} {'rows':>8} {'read-only open':>15} {'via socket':>11} {'ratio':>6}")
    for name in QUERIES:
        own, socket = statistics.median(direct[name]), statistics.median(served[name])
        print(
            f"{name:<14} {rows[name]:>8} {own * 1000:>12.1f} ms {socket * 1000:>8.1f} ms"
            f" {socket / own:>5.2f}x"
        )


if __name__ == "__main__":
    main()

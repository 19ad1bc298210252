"""Peak memory of `convo-etl export` storing one 100 MB history among ordinary conversations.

A loopback server (tests/canned_api.py) serves one history of 1,000 entries of 100,000
characters (its messages body holds the same messages, as the API's does) and a few small
ones; `convo-etl export` runs as a child whose kernel high-water mark (VmHWM) is its peak RSS.
The target (issue 9) is under 1.5 GB. Measured on a shared machine: the peak is memory, not
time, so load moves it little.

    python bench/big_history_bench.py [--entries 1000] [--entry-chars 100000]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import duckdb
import orjson
import psutil
from export_bench import CONVO_ETL, check_exit, child_env
from measure_process import run_measured

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from canned_api import (
    CannedConversation,
    canned_api,
    conversation_object,
    history_body,
    message_entry,
)

SMALL_CONVERSATIONS = 20
PEAK_RSS_TARGET_MB = 1500


def canned(cid: str, texts: list[str]) -> CannedConversation:
    """A conversation whose history and messages bodies both hold ``texts`` as entries."""
    entries = orjson.dumps([message_entry(cid, i, t) for i, t in enumerate(texts)])
    messages = b'{"object":"conversation.messages","conversation_id":"' + cid.encode()
    messages += b'","messages":' + entries + b"}"
    return CannedConversation(conversation_object(cid), history_body(cid, entries), messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--entry-chars", type=int, default=100_000)
    args = parser.parse_args()
    big = [chr(ord("a") + i % 26) * args.entry_chars for i in range(args.entries)]
    api = {"c-big": canned("c-big", big)}
    api |= {f"c-{n}": canned(f"c-{n}", [f"hello {n}", "bye"]) for n in range(SMALL_CONVERSATIONS)}
    body_bytes = sum(len(c.history) + len(c.messages) for c in api.values())
    with tempfile.TemporaryDirectory(prefix="big-history-") as tmp, canned_api(api) as url:
        data_dir = Path(tmp) / "data"
        env = child_env(MISTRAL_API_KEY="bench-key", PREFECT_HOME=str(Path(tmp) / "prefect"))
        command = [
            str(CONVO_ETL),
            "export",
            f"--data-dir={data_dir}",
            f"--base-url={url}",
            "--no-progress",
        ]
        run = run_measured(command, env, psutil.Process(), cwd=Path(tmp))
        check_exit(run, "convo-etl export")
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            stored = con.execute("SELECT sum(length(raw)) FROM entries").fetchone()[0]
        warehouse_mb = os.path.getsize(data_dir / "warehouse.duckdb") / 1e6
    print(f"history and messages bodies: {body_bytes / 1e6:.1f} MB")
    print(f"entries' raw characters stored: {stored / 1e6:.1f} M")
    print(f"warehouse.duckdb: {warehouse_mb:.1f} MB")
    verdict = "under" if run.peak_rss_mb < PEAK_RSS_TARGET_MB else "OVER"
    print(f"peak RSS of convo-etl export: {run.peak_rss_mb:.0f} MB ({verdict} the 1,500 MB target)")


if __name__ == "__main__":
    main()

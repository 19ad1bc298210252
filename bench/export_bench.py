"""The export benchmark: how close `convo-etl export` gets to the latency-bound limit, and to dlt.

One emulator (its own process, 20 ms latency per request) serves, in turn: bare fetch loops
(httpx, httpx over aiohttp, aiohttp, the mistralai SDK, our extract client alone), `convo-etl
export` into a temp data dir, and dlt's rest_api source (Parquet loader, and its default one).
Each runs as its own process and does the export's requests: every list page, then history and
messages of each conversation, `--concurrency` in flight. The limit is requests x latency /
concurrency. Prints a markdown table.

    python bench/export_bench.py [--conversations 2000] [--latency-ms 20] [--concurrency 16]
                                 [--repeat 1] [--runs KEY,...] [--skip-dlt] [--memory-run]
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import psutil
from measure_process import MeasuredRun, run_measured

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator

BENCH_DIR = Path(__file__).resolve().parent
CONVO_ETL = Path(sys.executable).parent / "convo-etl"
PAGE_SIZE = 100
MEMORY_RUN_CONVERSATIONS = 20_000
MEMORY_BUDGET_MB = 400
BARE_LOOPS = {
    "httpx": "httpx.AsyncClient + orjson",
    "httpx-aiohttp": "httpx over httpx-aiohttp + orjson",
    "aiohttp": "aiohttp + orjson",
    "mistralai": "mistralai SDK (async)",
    "conversations-client": "extract.ConversationsClient alone",
}
DLT_LOADERS = {"parquet": "dlt rest_api, Parquet loader", "default": "dlt rest_api, default loader"}
EXPORT = "convo-etl export"
LAST_RUN = (
    "SELECT fetch_started, fetch_finished, requests FROM export_runs "
    "ORDER BY fetch_started DESC LIMIT 1"
)


@dataclass
class Row:
    """One measured run of one contender: its fetch phase and what it cost."""

    name: str
    requests: int
    fetch_s: float
    client_cpu_s: float
    emulator_cpu_s: float
    peak_rss_mb: float
    total_s: float
    notes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """The emulator's size and latency, the client's concurrency, and where the runs write."""

    url: str
    emulator: psutil.Process
    conversations: int
    latency_ms: float
    concurrency: int
    work_dir: Path

    @property
    def expected_requests(self) -> int:
        """List pages until a short one, then history and messages of every conversation."""
        return self.conversations // PAGE_SIZE + 1 + 2 * self.conversations

    @property
    def limit_s(self) -> float:
        """The latency-bound limit: every request waits the latency, `concurrency` at a time."""
        return self.expected_requests * self.latency_ms / 1000 / self.concurrency


def child_env(**extra: str) -> dict[str, str]:
    """This environment without any Prefect API or Mistral settings, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_API_", "MISTRAL_", "CONVO_ETL_"))
    }
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


def check_exit(run: MeasuredRun, name: str) -> None:
    """Exit with the child's last error line if it failed: its numbers would mean nothing."""
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        sys.exit(f"{name} failed (exit {run.returncode}): {tail}")


def result_line(run: MeasuredRun, name: str) -> dict:
    """The JSON result a baseline child printed last, or exit naming the failed child."""
    check_exit(run, name)
    return json.loads(run.stdout.strip().splitlines()[-1])


def bare_loop_row(workload: Workload, name: str, loop: str) -> Row:
    """Run one bare loop child; it times its own fetch, from first request to last."""
    command = [
        sys.executable,
        str(BENCH_DIR / "baselines.py"),
        loop,
        f"--base-url={workload.url}",
        f"--concurrency={workload.concurrency}",
        f"--page-size={PAGE_SIZE}",
    ]
    return child_row(workload, name, command)


def dlt_row(workload: Workload, name: str, loader: str) -> Row:
    """Run dlt's rest_api pipeline in a child; its extract step is its fetch phase."""
    work_dir = Path(tempfile.mkdtemp(prefix="dlt-", dir=workload.work_dir))
    command = [
        sys.executable,
        str(BENCH_DIR / "dlt_baseline.py"),
        f"--base-url={workload.url}",
        f"--work-dir={work_dir}",
        f"--concurrency={workload.concurrency}",
        f"--page-size={PAGE_SIZE}",
        f"--loader={loader}",
    ]
    return child_row(workload, name, command, pipeline_note=True)


def child_row(
    workload: Workload, name: str, command: list[str], pipeline_note: bool = False
) -> Row:
    """Run a child that prints its own result line (requests, fetch_s, cpu_s) and measure it."""
    run = run_measured(command, child_env(), workload.emulator)
    result = result_line(run, name)
    return Row(
        name=name,
        requests=result["requests"],
        fetch_s=result["fetch_s"],
        client_cpu_s=result["cpu_s"],
        emulator_cpu_s=run.emulator_cpu_s,
        peak_rss_mb=run.peak_rss_mb,
        total_s=run.wall_s,
        notes={"pipeline_s": result["total_s"]} if pipeline_note else {},
    )


def export_row(workload: Workload, prefect_home: Path, data_dir: Path | None = None) -> Row:
    """Run `convo-etl export` into ``data_dir`` (default: a fresh one); its export_runs row times
    the fetch phase."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="export-", dir=workload.work_dir))
    command = [
        str(CONVO_ETL),
        "export",
        f"--data-dir={data_dir}",
        f"--base-url={workload.url}",
        f"--concurrency={workload.concurrency}",
        f"--page-size={PAGE_SIZE}",
        "--no-progress",
    ]
    env = child_env(MISTRAL_API_KEY="bench-key", PREFECT_HOME=str(prefect_home))
    run = run_measured(command, env, workload.emulator, cwd=workload.work_dir)
    check_exit(run, EXPORT)
    fetch_started, fetch_finished, requests = last_run(data_dir)
    return Row(
        name=EXPORT,
        requests=requests,
        fetch_s=fetch_finished - fetch_started,
        client_cpu_s=run.cpu_between(fetch_started, fetch_finished),
        emulator_cpu_s=run.emulator_cpu_s,
        peak_rss_mb=run.peak_rss_mb,
        total_s=run.wall_s,
        notes={
            "start_up_s": fetch_started - run.started_at,
            "after_fetch_s": run.finished_at - fetch_finished,
            "process_cpu_s": run.cpu_s,
            "tree_cpu_s": run.tree_cpu_s,
            "prefect_server_peak_rss_mb": run.descendants_peak_rss_mb,
        },
    )


def last_run(data_dir: Path) -> tuple[float, float, int]:
    """The last export run's fetch_started and fetch_finished (epoch seconds) and requests."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        row = connection.execute(LAST_RUN).fetchone()
    if row is None or None in row:
        sys.exit(f"{EXPORT} recorded no finished fetch phase in export_runs")
    fetch_started, fetch_finished, requests = row
    return fetch_started.timestamp(), fetch_finished.timestamp(), requests


def median_row(rows: list[Row]) -> tuple[Row, float]:
    """The run with the median fetch time, and the spread of fetch times (max-min)/median."""
    ordered = sorted(rows, key=lambda row: row.fetch_s)
    middle = ordered[(len(ordered) - 1) // 2]
    median = statistics.median(row.fetch_s for row in rows)
    return middle, (ordered[-1].fetch_s - ordered[0].fetch_s) / median


def render_table(workload: Workload, measured: list[tuple[Row, float]], repeat: int) -> str:
    """The markdown table: time, ratio to the limit, CPU per request on both sides, memory."""
    spread_header = f" spread of {repeat} |" if repeat > 1 else ""
    lines = [
        f"| run | requests | fetch (s) | x limit | total (s) | client CPU ms/req "
        f"| emulator CPU ms/req | peak RSS (MB) |{spread_header}",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if repeat > 1 else ""),
        f"| latency-bound limit | {workload.expected_requests:,} | {workload.limit_s:.2f} "
        f"| 1.00 | | | | |" + (" |" if repeat > 1 else ""),
    ]
    for row, spread in measured:
        requests = max(row.requests, 1)
        spread_cell = f" {spread:.0%} |" if repeat > 1 else ""
        lines.append(
            f"| {row.name} | {row.requests:,} | {row.fetch_s:.2f} "
            f"| {row.fetch_s / workload.limit_s:.2f} | {row.total_s:.2f} "
            f"| {row.client_cpu_s * 1000 / requests:.2f} "
            f"| {row.emulator_cpu_s * 1000 / requests:.2f} | {row.peak_rss_mb:.0f} |{spread_cell}"
        )
    return "\n".join(lines)


def render_notes(workload: Workload, measured: list[tuple[Row, float]]) -> str:
    """The export's start-up, tail and memory apart, and its total against dlt's."""
    rows = {row.name: row for row, _ in measured}
    lines = [
        "",
        f"{workload.conversations:,} conversations, {workload.latency_ms:g} ms latency, "
        f"{workload.concurrency} in flight; limit = {workload.expected_requests:,} requests x "
        f"{workload.latency_ms:g} ms / {workload.concurrency} = {workload.limit_s:.2f} s.",
        "fetch = first request to last (export: fetch_started to fetch_finished of its "
        "export_runs row, up to the last response; dlt: its extract step); total = the "
        "process's wall time, start-up included. CPU per request: the client's own process "
        "during the fetch, and the emulator's process during the whole run.",
    ]
    export = rows.get(EXPORT)
    if export is not None:
        notes = export.notes
        lines += [
            f"{EXPORT}: start-up before the first request {notes['start_up_s']:.2f} s "
            "(imports + Prefect's temporary server), "
            f"fetch {export.fetch_s:.2f} s, after the fetch {notes['after_fetch_s']:.2f} s, "
            f"total {export.total_s:.2f} s.",
            f"{EXPORT}: CPU {notes['process_cpu_s']:.1f} s in the export process, "
            f"{notes['tree_cpu_s']:.1f} s with Prefect's server; "
            f"peak RSS {export.peak_rss_mb:.0f} MB "
            f"(Prefect's server: {notes['prefect_server_peak_rss_mb']:.0f} MB more).",
        ]
    for name in DLT_LOADERS.values():
        dlt = rows.get(name)
        if dlt is not None:
            lines.append(
                f"{name}: extract {dlt.fetch_s:.2f} s, extract+normalize+load "
                f"{dlt.notes['pipeline_s']:.2f} s, process total {dlt.total_s:.2f} s."
            )
            if export is not None:
                without_start_up = export.total_s - export.notes["start_up_s"]
                lines.append(
                    f"{EXPORT} is {dlt.total_s / export.total_s:.2f}x as fast as {name} in "
                    f"total ({dlt.total_s / without_start_up:.2f}x leaving out its start-up)."
                )
    return "\n".join(lines)


def render_memory_run(workload: Workload, export: Row) -> str:
    """The memory run's verdict: the export process's peak RSS against the budget."""
    verdict = "within" if export.peak_rss_mb <= MEMORY_BUDGET_MB else "OVER"
    return (
        f"{EXPORT} of {workload.conversations:,} conversations: peak RSS "
        f"{export.peak_rss_mb:.0f} MB, {verdict} the {MEMORY_BUDGET_MB} MB budget "
        f"(Prefect's server process: {export.notes['prefect_server_peak_rss_mb']:.0f} MB more); "
        f"fetch {export.fetch_s:.2f} s ({export.fetch_s / workload.limit_s:.2f}x the limit), "
        f"total {export.total_s:.2f} s."
    )


def contenders(prefect_home: Path) -> dict[str, tuple[str, Callable[[Workload], Row]]]:
    """Every run the bench can make, by key, in table order: bare loops, the export, dlt."""
    runs: dict[str, tuple[str, Callable[[Workload], Row]]] = {
        loop: (name, lambda w, n=name, loop=loop: bare_loop_row(w, n, loop))
        for loop, name in BARE_LOOPS.items()
    }
    runs["export"] = (EXPORT, lambda w: export_row(w, prefect_home))
    for loader, name in DLT_LOADERS.items():
        runs[f"dlt-{loader}"] = (name, lambda w, n=name, loader=loader: dlt_row(w, n, loader))
    return runs


def chosen_runs(args: argparse.Namespace, keys: list[str]) -> list[str]:
    """The keys to run: --runs (default all), minus dlt without it installed or with --skip-dlt."""
    if args.memory_run:
        return ["export"]
    chosen = args.runs.split(",") if args.runs else keys
    unknown = sorted(set(chosen) - set(keys))
    if unknown:
        sys.exit(f"unknown --runs {', '.join(unknown)}; choose from {', '.join(keys)}")
    if "export" in chosen and not CONVO_ETL.exists():
        sys.exit(f"{CONVO_ETL} not found: install the project (make install) and use its python")
    skip_dlt = args.skip_dlt or not dlt_installed()
    return [key for key in keys if key in chosen and not (skip_dlt and key.startswith("dlt-"))]


def dlt_installed() -> bool:
    """Whether the bench extra (dlt) is installed."""
    return importlib.util.find_spec("dlt") is not None


def parse_args() -> argparse.Namespace:
    """The command line; bad values exit with a one-line error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (median shown)")
    parser.add_argument("--runs", help="comma-separated keys of the runs to make (default: all)")
    parser.add_argument("--skip-dlt", action="store_true", help="leave out the dlt rows")
    parser.add_argument(
        "--memory-run",
        action="store_true",
        help=f"export only, {MEMORY_RUN_CONVERSATIONS:,} conversations: peak RSS vs the budget",
    )
    args = parser.parse_args()
    if args.memory_run:
        args.conversations = MEMORY_RUN_CONVERSATIONS
    for name in ("conversations", "concurrency", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.latency_ms <= 0:
        parser.error("--latency-ms must be positive (the limit is measured against it)")
    return args


def main() -> None:
    """Start the emulator, run every contender `--repeat` times, print the table."""
    args = parse_args()
    # Prefect's home outlives the run: a fresh one would charge its database set-up to start-up.
    prefect_home = Path(tempfile.gettempdir()) / "convo-etl-bench-prefect"
    runs = contenders(prefect_home)
    keys = chosen_runs(args, list(runs))
    with tempfile.TemporaryDirectory(prefix="convo-etl-bench-") as tmp:
        work_dir = Path(tmp)
        config = EmulatorConfig(conversations=args.conversations, latency_ms=args.latency_ms)
        with spawn_emulator(config) as emulator:
            workload = Workload(
                url=emulator.url,
                emulator=psutil.Process(emulator.pid),
                conversations=args.conversations,
                latency_ms=args.latency_ms,
                concurrency=args.concurrency,
                work_dir=work_dir,
            )
            # One untimed crawl first: the emulator builds each synthetic body on first read,
            # and whichever contender ran first would pay for that.
            print("  warming the emulator's body cache...", file=sys.stderr, flush=True)
            bare_loop_row(workload, "warm-up", "aiohttp")
            measured = []
            for key in keys:
                name, run = runs[key]
                rows = []
                for _ in range(args.repeat):
                    rows.append(run(workload))
                    print(f"  {name}: {rows[-1].fetch_s:.2f} s", file=sys.stderr, flush=True)
                measured.append(median_row(rows))
    if args.memory_run:
        print(render_memory_run(workload, measured[0][0]))
        return
    print(render_table(workload, measured, args.repeat))
    print(render_notes(workload, measured))


if __name__ == "__main__":
    main()

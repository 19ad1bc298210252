"""The start-up bench: what `convo-etl export` costs beyond its fetch phase, before and after.

One emulator (its own process, 20 ms latency) serves 2,000 conversations. Each run is a whole
`convo-etl export` into a fresh data dir with a temporary Prefect server (no PREFECT_API_URL):
its cost beyond the fetch is the process's wall time less its fetch phase (fetch_started to
fetch_finished of its export_runs row), i.e. imports, Prefect's start, the warehouse's open, the
last batch's store, the summary and Prefect's end. The same is measured for another git ref
(`--before`, default `main`: its tree exported to a temp dir and run by this venv's Python), the
two alternating so that both see the same load; medians are printed side by side. Each keeps its
PREFECT_HOME across its runs, as a nightly export does, after one untimed run that creates
Prefect's database (a first run ever also pays its migrations: about 3x the server's start).

    python bench/startup_bench.py [--conversations 2000] [--latency-ms 20] [--repeat 3]
                                  [--before main] [--running-server]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from export_bench import check_exit, child_env, last_run
from measure_process import run_measured

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator
from flows.prefect_server import running_server

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Contender:
    """A source tree to run `convo-etl` from, as its console script would."""

    name: str
    source: Path
    prefect_home: Path

    def command(self) -> list[str]:
        """This venv's Python running the tree's `convo-etl` entry point, the tree first on
        sys.path (so an editable install of another tree does not shadow it)."""
        scripts = tomllib.loads((self.source / "pyproject.toml").read_text())["project"]["scripts"]
        module, attribute = scripts["convo-etl"].split(":")
        code = (
            f"import sys; sys.path.insert(0, {str(self.source)!r}); sys.argv[0] = 'convo-etl'; "
            f"from {module} import {attribute}; sys.exit({attribute}())"
        )
        return [sys.executable, "-c", code]


@dataclass(frozen=True)
class Cost:
    """One export run: wall time, its fetch phase, before it and after it (seconds)."""

    wall_s: float
    fetch_s: float
    before_fetch_s: float
    after_fetch_s: float

    @property
    def beyond_fetch_s(self) -> float:
        """What the command costs beyond its fetch phase."""
        return self.wall_s - self.fetch_s


def exported_tree(ref: str, into: Path) -> Path:
    """The files of git ref ``ref`` of this repository, written under ``into``."""
    tree = into / ref.replace("/", "-")
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def measure(
    contender: Contender, url: str, emulator: psutil.Process, work: Path, api_url: str | None
) -> Cost:
    """Run one export from ``contender`` into a fresh data dir and time its phases, against the
    Prefect API at ``api_url`` (None: the command's own temporary server)."""
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=work))
    command = [
        *contender.command(),
        "export",
        f"--data-dir={data_dir}",
        f"--base-url={url}",
        "--no-progress",
    ]
    env = child_env(MISTRAL_API_KEY="bench-key", PREFECT_HOME=str(contender.prefect_home))
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    run = run_measured(command, env, emulator, cwd=work)
    check_exit(run, contender.name)
    fetch_started, fetch_finished, _ = last_run(data_dir)
    return Cost(
        wall_s=run.wall_s,
        fetch_s=fetch_finished - fetch_started,
        before_fetch_s=fetch_started - run.started_at,
        after_fetch_s=run.finished_at - fetch_finished,
    )


def server_start_s(prefect_home: Path) -> float:
    """Seconds from spawning the temporary Prefect server to its first healthy answer: what no
    overlap in the command can hide (it is on the critical path once the imports overlap it)."""
    code = (
        "import time; from flows.prefect_server import running_server; "
        "t = time.perf_counter(); s = running_server(); print(time.perf_counter() - t); s.stop()"
    )
    env = child_env(PREFECT_HOME=str(prefect_home))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


@contextmanager
def running_api(wanted: bool, work: Path) -> Iterator[str | None]:
    """A Prefect server started here, its API URL, for as long as the block runs (None when
    not ``wanted``: each command then starts its own)."""
    if not wanted:
        yield None
        return
    previous_home = os.environ.get("PREFECT_HOME")
    os.environ["PREFECT_HOME"] = str(work / "shared-prefect")
    try:
        server = running_server()
    finally:
        if previous_home is None:
            del os.environ["PREFECT_HOME"]
        else:
            os.environ["PREFECT_HOME"] = previous_home
    try:
        yield server.url
    finally:
        server.stop()


def median_cost(costs: list[Cost]) -> Cost:
    """Each column's median over the runs."""
    return Cost(
        *(statistics.median(getattr(c, name) for c in costs) for name in Cost.__annotations__)
    )


def report(
    costs: dict[str, list[Cost]], server_s: list[float], conversations: int, latency_ms: float
) -> str:
    """The side-by-side table and the start-up line (and the server's start, when measured)."""
    prefect = "a temporary Prefect server" if server_s else "a running Prefect server"
    lines = [
        f"{conversations:,} conversations, {latency_ms:g} ms latency, {prefect}; "
        f"medians of {len(next(iter(costs.values())))} alternating runs each.",
        "",
        "| run | total (s) | fetch (s) | before the fetch (s) | after the fetch (s) "
        "| beyond the fetch (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    medians = {name: median_cost(runs) for name, runs in costs.items()}
    for name, cost in medians.items():
        lines.append(
            f"| {name} | {cost.wall_s:.2f} | {cost.fetch_s:.2f} | {cost.before_fetch_s:.2f} "
            f"| {cost.after_fetch_s:.2f} | {cost.beyond_fetch_s:.2f} |"
        )
    before, after = medians.values()
    lines += [
        "",
        f"start-up: beyond the fetch {after.beyond_fetch_s:.2f} s against "
        f"{before.beyond_fetch_s:.2f} s before: "
        f"{after.beyond_fetch_s / before.beyond_fetch_s:.2f}x (target 0.50x)",
    ]
    if server_s:
        lines.append(
            "the temporary Prefect server alone, spawn to healthy: "
            f"{statistics.median(server_s):.2f} s (median, measured between the runs)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", default="main", help="The git ref to compare with.")
    parser.add_argument(
        "--running-server",
        action="store_true",
        help="Every run against one Prefect server started beforehand (PREFECT_API_URL set), as "
        "a scheduled or work-pool export runs, instead of each command's temporary one.",
    )
    args = parser.parse_args()
    config = EmulatorConfig(conversations=args.conversations, latency_ms=args.latency_ms)
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as temp:
        work = Path(temp)
        contenders = [
            Contender(f"before ({args.before})", exported_tree(args.before, work), work / "p0"),
            Contender("after (this checkout)", REPO, work / "p1"),
        ]
        costs: dict[str, list[Cost]] = {contender.name: [] for contender in contenders}
        server_s: list[float] = []
        with spawn_emulator(config) as emu, running_api(args.running_server, work) as api_url:
            emulator = psutil.Process(emu.pid)
            for contender in contenders:
                measure(contender, emu.url, emulator, work, api_url)
            for _ in range(args.repeat):
                for contender in contenders:
                    cost = measure(contender, emu.url, emulator, work, api_url)
                    costs[contender.name].append(cost)
                if api_url is None:
                    server_s.append(server_start_s(contenders[-1].prefect_home))
    print(report(costs, server_s, args.conversations, args.latency_ms))


if __name__ == "__main__":
    main()

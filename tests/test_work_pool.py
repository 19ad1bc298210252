"""The export scaled out for real: a Prefect server, a process work pool, two workers, two
workspaces (two emulators with different keys, each key in its own Secret block), one deployment
per workspace, one flow run each, sharing one rate limit.

The local warehouse has no workspace column yet, so each workspace exports into its own data dir
and the test checks each dir holds exactly its own emulator's conversations.
"""

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
from arrivals import most_in_one_second
from conftest import CONVO_ETL
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.app import build_app
from emulator.config import EmulatorConfig
from emulator.server import bind_loopback, url_of, uvicorn_server
from emulator.store import ConversationStore

PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "convo-etl-test-pool"
RATE_LIMIT = "convo-etl-test-rate"
RATE_RPS = 20
BURST = 10
CONVERSATIONS = 40
WORKSPACES = {"alpha": "sk-alpha-8f3a1c0d9e", "beta": "sk-beta-77b2e4f6a1"}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RUNS_TIMEOUT_S = 150


class ArrivalLog:
    """ASGI middleware noting when each request arrives (to count requests per second)."""

    def __init__(self, app: ASGIApp, arrivals: list[float]) -> None:
        self.app = app
        self.arrivals = arrivals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.arrivals.append(time.monotonic())
        await self.app(scope, receive, send)


@contextlib.contextmanager
def logged_emulator(
    config: EmulatorConfig, arrivals: list[float]
) -> Iterator[tuple[str, ConversationStore]]:
    """An emulator on loopback whose request arrival times go to ``arrivals``; yields its URL
    and its store."""
    store = ConversationStore(config.conversations, config.seed)
    sock = bind_loopback(0)
    server = uvicorn_server(ArrivalLog(build_app(store, config), arrivals))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the emulator did not start"
            time.sleep(0.01)
        yield url_of(sock), store
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_together(commands: list[tuple[list[str], dict[str, str]]]) -> None:
    """Run the commands (each with its environment) at the same time; each must succeed."""
    running = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for args, env in commands
    ]
    for (args, _), process in zip(commands, running, strict=True):
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"{args[:3]}: {output}"


@contextlib.contextmanager
def workers(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[Path]]:
    """``count`` process workers on POOL, one flow run at a time each; yields their log files."""
    logs = [log_dir / f"worker-{i}.log" for i in range(count)]
    processes = []
    try:
        for log in logs:
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [PREFECT, "worker", "start", "--pool", POOL, "--limit", "1"],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def finished_runs(run_ids: list, timeout: float) -> list:
    """The flow runs once each is in a final state (or as they are when ``timeout`` passes)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deadline = time.monotonic() + timeout
        while True:
            runs = [await client.read_flow_run(run_id) for run_id in run_ids]
            if all(run.state.type.value in FINAL for run in runs) or time.monotonic() > deadline:
                return runs
            await asyncio.sleep(1)


async def run_logs(run_ids: list) -> list[str]:
    """Every log message the flow runs sent to Prefect."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async with get_client() as client:
        logs = await client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids)), limit=200
        )
    return [log.message for log in logs]


def stored_conversation_ids(data_dir: Path) -> set[str]:
    """The ids of the conversations stored in a data dir's warehouse."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return {row[0] for row in con.execute("select id from conversations").fetchall()}


def export_run_statuses(data_dir: Path) -> list[str]:
    """The statuses of the export runs recorded in a data dir's warehouse."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return [row[0] for row in con.execute("select status from export_runs").fetchall()]


def test_one_run_per_workspace_on_a_work_pool_sharing_one_rate(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    from prefect.deployments import run_deployment

    # Nothing on the workers' side holds a key: each run reads its own from its Secret block.
    env = {k: v for k, v in cli_env.items() if k != "MISTRAL_API_KEY"}
    keyed = {name: {**env, "MISTRAL_API_KEY": key} for name, key in WORKSPACES.items()}
    arrivals: list[float] = []
    with contextlib.ExitStack() as stack:
        emulators = {
            name: stack.enter_context(
                logged_emulator(
                    EmulatorConfig(conversations=CONVERSATIONS, seed=seed, api_key=key), arrivals
                )
            )
            for seed, (name, key) in enumerate(WORKSPACES.items(), start=1)
        }
        rate = ["--limit", str(BURST), "--slot-decay-per-second", str(RATE_RPS)]
        run_together(
            [
                ([PREFECT, "work-pool", "create", POOL, "--type", "process"], env),
                ([PREFECT, "gcl", "create", RATE_LIMIT, *rate], env),
                ([CONVO_ETL, "key-secret", "alpha-key"], keyed["alpha"]),
            ]
        )
        worker_logs = stack.enter_context(
            workers(2, {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}, tmp_path)
        )
        deploys = [
            [
                CONVO_ETL,
                "deploy",
                *("--pool", POOL, "--workspace", name, "--api-key-secret", f"{name}-key"),
                *("--rate-limit-name", RATE_LIMIT, "--base-url", emulators[name][0]),
                *("--data-dir", str(tmp_path / name)),
            ]
            for name in WORKSPACES
        ]
        run_together(
            [([CONVO_ETL, "key-secret", "beta-key"], keyed["beta"])]
            + [(deploy, env) for deploy in deploys]
        )
        runs = [
            run_deployment(f"export-conversations/export-{name}", timeout=0) for name in WORKSPACES
        ]
        run_ids = [run.id for run in runs]
        finished = asyncio.run(finished_runs(run_ids, RUNS_TIMEOUT_S))
        messages = asyncio.run(run_logs(run_ids))

    assert [run.state.type.value for run in finished] == ["COMPLETED", "COMPLETED"], [
        (run.state.type.value, run.state.message) for run in finished
    ]
    for name, (_, store) in emulators.items():
        expected = {c["id"] for c in store.conversations_newest_first()}
        assert len(expected) == CONVERSATIONS
        assert stored_conversation_ids(tmp_path / name) == expected
        assert export_run_statuses(tmp_path / name) == ["completed"]
    assert {run.parameters["workspace"] for run in finished} == set(WORKSPACES)
    shown = json.dumps([run.parameters for run in finished]) + "\n".join(messages)
    shown += "".join(log.read_text(errors="replace") for log in worker_logs)
    assert messages
    for key in WORKSPACES.values():
        assert key not in shown
    # Tokens come from one rate limit: at most its burst plus one second of its decay.
    t0 = min(arrivals)
    from collections import Counter

    print(
        "DEBUG",
        most_in_one_second(arrivals),
        len(arrivals),
        sorted(Counter(int(a - t0) for a in arrivals).items()),
    )
    assert most_in_one_second(arrivals) <= BURST + RATE_RPS
    assert len(arrivals) >= 2 * CONVERSATIONS

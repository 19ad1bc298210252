"""Run the emulator with uvicorn: in a background thread (tests) or its own process (benchmarks)."""

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec

import uvicorn
from starlette.types import ASGIApp

from emulator.app import build_app
from emulator.config import EmulatorConfig
from emulator.store import ConversationStore

HOST = "127.0.0.1"
API_KEY_ENV = "CONVO_ETL_EMULATOR_API_KEY"
_STARTUP_TIMEOUT_S = 30.0
_URL = re.compile(r"http://[\w.:]+")


@dataclass
class RunningEmulator:
    """An emulator serving from this process: its URL, live state and live knobs."""

    url: str
    store: ConversationStore
    config: EmulatorConfig


@dataclass
class SpawnedEmulator:
    """An emulator serving from a child process: its URL and pid (knobs are fixed at spawn)."""

    url: str
    pid: int
    config: EmulatorConfig


def bind_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (`port` 0 picks a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """The base URL a bound socket serves."""
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def uvicorn_server(app: ASGIApp) -> uvicorn.Server:
    """A quiet uvicorn server, with uvloop and httptools when they are installed."""
    config = uvicorn.Config(
        app,
        loop="uvloop" if find_spec("uvloop") else "asyncio",
        http="httptools" if find_spec("httptools") else "h11",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


@contextlib.contextmanager
def running_emulator(config: EmulatorConfig | None = None) -> Iterator[RunningEmulator]:
    """Serve the emulator on a free loopback port from a background thread until exit."""
    config = config or EmulatorConfig()
    store = ConversationStore(config.conversations, config.seed)
    sock = bind_loopback(0)
    server = uvicorn_server(build_app(store, config))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator's server did not start")
            time.sleep(0.005)
        yield RunningEmulator(url=url_of(sock), store=store, config=config)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def command_line(config: EmulatorConfig, port: int = 0) -> list[str]:
    """The `python -m emulator` arguments serving `config` (the API key goes by environment)."""
    args = [sys.executable, "-m", "emulator", "--port", str(port)]
    args += ["--conversations", str(config.conversations), "--seed", str(config.seed)]
    args += ["--latency-ms", str(config.latency_ms), "--token-delay-ms", str(config.token_delay_ms)]
    args += [
        "--fault-rate",
        str(config.fault_rate),
        "--stream-cut-rate",
        str(config.stream_cut_rate),
        "--stream-error-rate",
        str(config.stream_error_rate),
        "--generation-ms",
        str(config.generation_ms),
        "--fault-after-commit-rate",
        str(config.fault_after_commit_rate),
    ]
    if not config.function_calls_end_turn:
        args.append("--no-function-calls-end-turn")
    if not config.thinking_chunks:
        args.append("--no-thinking-chunks")
    if not config.rate_limit_retry_after:
        args.append("--no-retry-after")
    if config.rps is not None:
        args += ["--rps", str(config.rps)]
    return args


def _read_url(process: subprocess.Popen, timeout_s: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=timeout_s):
            raise RuntimeError("the emulator process did not report its URL in time")
    line = process.stdout.readline()
    match = _URL.search(line)
    if match is None:
        raise RuntimeError(f"the emulator process failed to start (exit code {process.poll()})")
    return match.group(0)


@contextlib.contextmanager
def spawn_emulator(
    config: EmulatorConfig | None = None, startup_timeout_s: float = _STARTUP_TIMEOUT_S
) -> Iterator[SpawnedEmulator]:
    """Serve the emulator from its own process (so its CPU is not the caller's) until exit.

    ``startup_timeout_s`` bounds the wait for its URL (a large synthetic account, built first on
    a loaded machine, may need more than the default)."""
    config = config or EmulatorConfig()
    env = dict(os.environ)
    env.pop(API_KEY_ENV, None)
    if config.api_key is not None:
        env[API_KEY_ENV] = config.api_key
    process = subprocess.Popen(
        command_line(config), stdout=subprocess.PIPE, text=True, env=env, cwd=os.getcwd()
    )
    try:
        url = _read_url(process, startup_timeout_s)
        yield SpawnedEmulator(url=url, pid=process.pid, config=config)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()

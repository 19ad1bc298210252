"""The temporary Prefect server's child process: started, waited for, stopped. Standard library
only, so the `convo-etl` entry point can start it before importing anything heavy.

The server takes seconds to come up (its own imports, its database's migrations), and so do the
command's imports (Prefect, DuckDB, Arrow, polars); started first, the two overlap
(`start_early`), and `flows.prefect_api` adopts the running child (`adopt_early`).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STARTUP_TIMEOUT_S = 90.0
# uvicorn's exit code when it cannot bind, and when the app's start-up fails: the two are told
# apart by what it wrote.
_STARTUP_FAILED_EXIT = 3
_PORT_IN_USE = "address already in use"
# A Python exception's last line, "module.SomeError: what went wrong".
_EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception)\b.*: ")
_PR_SET_PDEATHSIG = 1
# Offline by default; the user's environment may say otherwise.
_SERVER_DEFAULTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
_NOT_FOR_SERVER = frozenset({"MISTRAL_API_KEY"})
_SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}


class PrefectServerFailed(RuntimeError):
    """The temporary Prefect server did not come up; the message is one line."""


@dataclass
class ServerProcess:
    """A server child on its port; its stderr goes to a temp file (a pipe nobody reads would
    block a chatty server), read back only to say why it exited."""

    process: subprocess.Popen[bytes]
    url: str
    errors: IO[bytes]

    def error_lines(self) -> list[str]:
        """What the server wrote on stderr, by line."""
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace").strip().splitlines()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.errors.close()


_early: ServerProcess | None = None


def start_early() -> None:
    """Spawn the server now without waiting for it (stopped at exit unless adopted)."""
    global _early
    _early = _spawn()
    atexit.register(discard_early)


def adopt_early() -> ServerProcess | None:
    """The server `start_early` spawned, now the caller's to stop; None if there is none."""
    global _early
    server, _early = _early, None
    return server


def discard_early() -> None:
    """Stop the early server when nothing adopted it (a configured API, a failed command)."""
    server = adopt_early()
    if server is not None:
        server.stop()


def running_server() -> ServerProcess:
    """The early server once it answers, or a new one: a server that answers its health check."""
    return asyncio.run(answering_server())


async def answering_server() -> ServerProcess:
    """`running_server`, awaited: the event loop goes on with other work while the server comes
    up (an export lists and fetches meanwhile). Cancelled, it stops the server it waited for."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    server = adopt_early() or _spawn()
    while True:
        try:
            exit_code = await _wait_healthy(server, deadline)
        except asyncio.CancelledError:
            server.stop()
            raise
        if exit_code is None:
            return server
        said = server.error_lines()
        server.errors.close()
        if exit_code != _STARTUP_FAILED_EXIT or not any(_PORT_IN_USE in line for line in said):
            raise PrefectServerFailed(
                f"the temporary Prefect server exited with code {exit_code}: {_why(said)}"
            )
        server = _spawn()


def _why(error_lines: list[str]) -> str:
    """The last exception a server wrote, else its last line: why it stopped."""
    exceptions = [line for line in error_lines if _EXCEPTION_LINE.match(line)]
    return (exceptions or error_lines or ["no output"])[-1]


def _spawn() -> ServerProcess:
    """Start a server on a port that was free a moment ago."""
    port = _free_port()
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by ServerProcess.stop)
    process = subprocess.Popen(
        _server_command(port),
        env=_server_environment(),
        stdout=subprocess.DEVNULL,
        stderr=errors,
        # Its own session: Ctrl-C (SIGINT to the terminal's process group) reaches only
        # us, and the server stays up to record how our flow run ended; we stop it last.
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    return ServerProcess(process, f"http://127.0.0.1:{port}/api", errors)


def _server_environment() -> dict[str, str]:
    """Our environment for the server, without the API key: the server never calls the API."""
    inherited = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_SERVER}
    return {**_SERVER_DEFAULTS, **inherited, **_SERVER_ENV}


def _server_command(port: int) -> list[str]:
    """What Prefect itself runs for its temporary server (found without importing Prefect)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise PrefectServerFailed("Prefect is not installed in this environment")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(spec.origin).parent.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def answers(url: str) -> bool:
    """Whether a Prefect API answers its health check at ``url`` (``.../api``)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


async def _wait_healthy(server: ServerProcess, deadline: float) -> int | None:
    """None once the server answers /health; its exit code if it stopped first."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return server.process.returncode
        if await asyncio.to_thread(answers, server.url):
            return None
        await asyncio.sleep(0.1)
    server.stop()
    raise PrefectServerFailed(
        f"the temporary Prefect server did not answer within {STARTUP_TIMEOUT_S:.0f} s"
    )


def _die_with_parent() -> None:
    """In the server's process, on Linux: get SIGTERM when the process that started it dies,
    even by SIGKILL, instead of living on as an orphan."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (uvicorn exits with 3 if it was taken)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

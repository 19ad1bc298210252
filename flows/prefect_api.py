"""Where this process's Prefect API is; when none is set, a temporary server we start ourselves.

Prefect would start the same temporary server (uvicorn serving
``prefect.server.api.server:create_app`` in a child process) at the first flow call, but to do so
it imports the whole server (FastAPI, SQLAlchemy, asyncpg) into this process: 77 MB of an
export's memory, measured, for code that runs in the child. Starting the child ourselves keeps
those imports out of the exporting process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import prefect
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings
from rich.console import Console

from extract.urls import redacted_url

STARTUP_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 10.0
_PORT_IN_USE_EXIT = 3  # uvicorn's exit code when it cannot bind
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


def prefect_api_url() -> str | None:
    """The Prefect API this process talks to, or None when none is configured."""
    return get_current_settings().api.url


@contextmanager
def prefect_api(console: Console) -> Iterator[str]:
    """The configured Prefect API, or a temporary server for as long as the block runs."""
    configured = prefect_api_url()
    if configured is not None:
        check_answers(configured)
        yield configured
        return
    console.print(
        "starting Prefect (a temporary local server, 5-20 s; set PREFECT_API_URL to use "
        "a running one)...",
        highlight=False,
    )
    process, url = _start_server()
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                _drain_prefect_workers()
    finally:
        _stop(process)


def check_answers(url: str) -> None:
    """Fail in one line, before any flow runs, when the configured Prefect API does not answer
    (Prefect itself would retry for minutes and then print pages of tracebacks)."""
    if not answers(url):
        raise PrefectServerFailed(
            f"no Prefect API answers at {redacted_url(url)} (PREFECT_API_URL): start it, or unset "
            "PREFECT_API_URL to use a temporary one"
        )


def _drain_prefect_workers() -> None:
    """Send the logs and events Prefect still holds before their server stops (as Prefect's own
    test harness does), so that nothing is lost and nothing retries against a closed port."""
    APILogWorker.drain_all(timeout=DRAIN_TIMEOUT_S)
    EventsWorker.drain_all(timeout=DRAIN_TIMEOUT_S)


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on a free port and wait until it answers its health check."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        port = _free_port()
        # Its errors go to a file, not a pipe: a pipe nobody reads would block a chatty server.
        with tempfile.TemporaryFile() as errors:
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
            url = f"http://127.0.0.1:{port}/api"
            exit_code = _wait_healthy(process, url, deadline)
            if exit_code is None:
                return process, url
            if exit_code != _PORT_IN_USE_EXIT:
                errors.seek(0)
                last_lines = errors.read().decode(errors="replace").strip().splitlines()
                raise PrefectServerFailed(
                    f"the temporary Prefect server exited with code {exit_code}: "
                    f"{last_lines[-1] if last_lines else 'no output'}"
                )


def _server_environment() -> dict[str, str]:
    """Our environment for the server, without the API key: the server never calls the API."""
    inherited = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_SERVER}
    return {**_SERVER_DEFAULTS, **inherited, **_SERVER_ENV}


def _server_command(port: int) -> list[str]:
    """What Prefect itself runs for its temporary server."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(prefect.__file__).parent.parent),
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


def _wait_healthy(process: subprocess.Popen[bytes], url: str, deadline: float) -> int | None:
    """None once the server answers /health; its exit code if it stopped first."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return process.returncode
        if answers(url):
            return None
        time.sleep(0.1)
    _stop(process)
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


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server: SIGTERM, then SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

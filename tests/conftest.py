"""Shared fixtures: an isolated Prefect home, one Prefect test server per session, data dirs."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# Prefect reads its settings at import time: isolate it before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="convo-etl-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MISTRAL_API_KEY", None)
os.environ.pop("MISTRAL_BASE_URL", None)
os.environ.pop("CONVO_ETL_DATA_DIR", None)

import psutil  # noqa: E402
import pytest  # noqa: E402

if TYPE_CHECKING:
    from emulator.server import RunningEmulator


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API server for the whole session (entering it costs 10-14 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory per test: Parquet parts and the DuckDB warehouse go here."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def emulator() -> "Iterator[RunningEmulator]":
    """One emulator for the session (60 conversations, seed 7, no latency): read-only scenarios."""
    from emulator.config import EmulatorConfig
    from emulator.server import running_emulator

    with running_emulator(EmulatorConfig(conversations=60, seed=7)) as running:
        yield running


@pytest.fixture
def make_emulator() -> "Iterator[Callable[..., RunningEmulator]]":
    """A factory of fresh emulators for one test: `make_emulator(conversations=5, fault_rate=0.3)`.

    Keyword arguments are EmulatorConfig fields; every emulator made is stopped at teardown.
    """
    from emulator.config import EmulatorConfig
    from emulator.server import running_emulator

    with contextlib.ExitStack() as stack:

        def make(**knobs: object) -> "RunningEmulator":
            return stack.enter_context(running_emulator(EmulatorConfig(**knobs)))

        yield make


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium: a test without one is skipped, or fails under CI.

    CI (.ci/run installs chromium and sets ``CI``) must run every browser test; a developer's
    machine without a browser runs the rest of the suite.
    """
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run the browser tests")
    pytest.skip(reason)


CONVO_ETL = str(Path(sys.executable).parent / "convo-etl")
CLI_KEY = "test-key"


@pytest.fixture
def cli_env(prefect_harness: None) -> dict[str, str]:
    """The environment of a `convo-etl` child: this session's Prefect server and a key.

    The harness sets PREFECT_API_URL only inside this process's settings context; children get
    its value in their environment (rather than paying a temporary server's start-up each).
    """
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "MISTRAL_API_KEY": CLI_KEY,
    }


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 180
) -> "subprocess.CompletedProcess[str]":
    """Run `convo-etl ARGS` in a child process to its end, capturing its output."""
    return subprocess.run(
        [CONVO_ETL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


SERVER_APP = "prefect.server.api.server:create_app"


def servers_of(prefect_home: Path) -> list[psutil.Process]:
    """Running Prefect servers whose PREFECT_HOME is ``prefect_home``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if SERVER_APP in (process.info["cmdline"] or []) and (
                process.environ().get("PREFECT_HOME") == str(prefect_home)
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found

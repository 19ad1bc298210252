"""Shared fixtures: an isolated Prefect home, one Prefect test server per session, data dirs."""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Prefect reads its settings at import time: isolate it before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="convo-etl-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MISTRAL_API_KEY", None)
os.environ.pop("MISTRAL_BASE_URL", None)
os.environ.pop("CONVO_ETL_DATA_DIR", None)

import pytest  # noqa: E402


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

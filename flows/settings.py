"""One settings object for every command and flow: data dir, API location and key, DuckDB limits.

The key is read from MISTRAL_API_KEY (never a flag or a flow parameter, so Prefect never stores
it); a process that must use another key for its own flows (the demo, with its emulator's key)
says so with ``api_key_for_runs`` instead of writing the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from extract.settings import ApiSettings
from transform.workspaces import DEFAULT_WORKSPACE as DEFAULT_WORKSPACE

DEFAULT_DATA_DIR = Path("data")
DATA_DIR_ENV = "CONVO_ETL_DATA_DIR"
# DuckDB's buffer pool defaults to 80% of RAM and grows with the warehouse; a cap keeps a run's
# memory bounded by its batch size (cold blocks are evicted: they live on disk). One thread: a
# merge runs beside the export's event loop on 2 cores, and a batch is too small to gain more.
# Only the flows that write take it; a read-only query (`convo-etl sql`) gets DuckDB's defaults.
WRITER_DUCKDB_LIMITS: Mapping[str, str | int] = {"memory_limit": "64MB", "threads": 1}

MIB = 2**20
_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def checked_workspace(name: str) -> str:
    """The workspace name itself, if it can be a partition and key value anywhere (one path
    component of at most 64 letters, digits, '.', '_' or '-'); else ValueError saying so."""
    if not _WORKSPACE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid workspace {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class ClientLimits(BaseModel):
    """How long a request or stream may take and how big a body may be (a flow parameter: the
    CLI's --timeout, --stream-idle-timeout, --stream-timeout and --max-body-mb)."""

    request_timeout: float = Field(120.0, gt=0)
    stream_idle_timeout: float = Field(300.0, gt=0)
    stream_timeout: float = Field(1800.0, gt=0)
    max_body_mb: int = Field(512, ge=1)

    def config_fields(self) -> dict[str, float | int]:
        """These limits as ClientConfig fields."""
        return {
            "request_timeout": self.request_timeout,
            "stream_idle_timeout": self.stream_idle_timeout,
            "stream_timeout": self.stream_timeout,
            "max_body_bytes": self.max_body_mb * MIB,
        }


_run_api_key: ContextVar[SecretStr | None] = ContextVar("run_api_key", default=None)


@dataclass(frozen=True)
class Settings:
    """Where the data lives, which API and key to use, and how much DuckDB may take."""

    data_dir: Path
    api: ApiSettings
    duckdb_limits: Mapping[str, str | int] = field(default_factory=lambda: WRITER_DUCKDB_LIMITS)


def load_settings(data_dir: str | Path | None = None, base_url: str | None = None) -> Settings:
    """Settings from the arguments, then the environment; raises pydantic's ValidationError on a
    base URL the client could never reach."""
    api = ApiSettings(base_url=base_url) if base_url else ApiSettings()
    key = _run_api_key.get()
    if key is not None:
        api = api.model_copy(update={"api_key": key})
    return Settings(data_dir=Path(data_dir) if data_dir else DEFAULT_DATA_DIR, api=api)


@contextmanager
def api_key_for_runs(key: str) -> Iterator[None]:
    """Within this block, flows run by this process use ``key`` instead of MISTRAL_API_KEY."""
    token = _run_api_key.set(SecretStr(key))
    try:
        yield
    finally:
        _run_api_key.reset(token)

"""Replay run ids: a new one sorts by time, a given one must be safe as a Parquet file name."""

import re
import uuid
from datetime import UTC, datetime

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def new_run_id() -> str:
    """A fresh, sortable run id: UTC time plus a random suffix."""
    return f"replay-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def check_run_id(run_id: str) -> str:
    """The run id if it is safe as a Parquet file name, else a ValueError saying what is allowed."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(
            f"run id {run_id!r} must be 1-100 letters, digits, '-' or '_' (starting alphanumeric)"
        )
    return run_id

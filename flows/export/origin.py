"""No mixing: a warehouse remembers which API filled it and refuses an export from another.

The origin is the redacted base URL (never a key), or "emulator" for the demo's emulator, whose
port changes from run to run.
"""

import duckdb

from extract.urls import redacted_url
from load.warehouse import other_origins, record_origin

EMULATOR_ORIGIN = "emulator"


class MixedOrigin(Exception):
    """The warehouse holds exports from another API; the message is one line for the user."""


def checked_origin(
    warehouse: duckdb.DuckDBPyConnection,
    base_url: str,
    emulator: bool,
    allow_mixed: bool,
    run_id: str,
    workspace: str,
) -> None:
    """Record this run's origin, or raise MixedOrigin if ``workspace`` came from another API.

    Per workspace: another workspace (another key) exported from another API is no mixing.
    """
    shown = redacted_url(base_url)
    origin = EMULATOR_ORIGIN if emulator else shown
    others = other_origins(warehouse, origin, workspace)
    if others and not allow_mixed:
        raise MixedOrigin(
            f"this data dir holds exports from {', '.join(others)}, not {origin}: use another "
            "--data-dir, or --allow-mixed to store both in one warehouse"
        )
    record_origin(warehouse, origin, shown, emulator, run_id, workspace)

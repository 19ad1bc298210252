"""One event of a streamed conversation, on its own so errors and the reader can both name it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One SSE event: its type, parsed JSON data, the raw data text, and when it arrived."""

    type: str
    data: dict[str, Any]
    raw: str
    received_at: datetime
    elapsed_ms: float

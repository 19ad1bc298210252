"""Ids and timestamps in the exact formats the live API uses."""

import random
import string
import time
from datetime import datetime, timedelta

# Naive UTC arithmetic: isoformat/fromisoformat are several times faster than strftime/strptime.
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_ALPHANUMERICS = string.ascii_letters + string.digits

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000


def entity_id(prefix: str, rng: random.Random) -> str:
    """An id such as `conv_` + 32 lowercase hex digits, drawn from `rng`."""
    return f"{prefix}_{rng.getrandbits(128):032x}"


def tool_call_id(rng: random.Random) -> str:
    """A function call's `tool_call_id`: 9 alphanumerics, as the API sends them."""
    return "".join(rng.choices(_ALPHANUMERICS, k=9))


def format_timestamp(micros: int) -> str:
    """ISO-8601 UTC with microseconds and a `Z`, e.g. `2025-06-01T12:00:00.000000Z`."""
    return (_EPOCH + timedelta(microseconds=micros)).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> int:
    """Microseconds since the epoch of a timestamp written by `format_timestamp`."""
    return (datetime.fromisoformat(text.removesuffix("Z")) - _EPOCH) // _MICROSECOND


def now_micros() -> int:
    """The wall clock in microseconds since the epoch."""
    return time.time_ns() // 1000


def start_of_today_micros() -> int:
    """Midnight UTC today: synthetic data ends here, so it is stable within a day and recent."""
    return now_micros() // DAY_US * DAY_US

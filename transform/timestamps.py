"""Parse the API's ISO-8601 timestamps into UTC datetimes, tolerating the variants seen."""

import re
from datetime import UTC, datetime

# Python keeps microseconds; the API may send more fractional digits (nanoseconds) than that.
_EXTRA_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(value: object) -> datetime | None:
    """Return ``value`` as an aware UTC datetime (naive means UTC), or None when it is not one."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(_EXTRA_FRACTION.sub(r"\1", value.strip()))
        except ValueError:
            return None
    else:
        return None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)

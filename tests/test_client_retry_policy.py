"""Retry-After parsing and backoff bounds, the pure half of the client's retry policy."""

from datetime import UTC, datetime

import pytest

from extract.retry_policy import Backoff, parse_retry_after

NOW = datetime(2026, 11, 26, 18, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 0.25 ", 0.25),
        ("-4", 0.0),
        ("Thu, 26 Nov 2026 18:00:07 GMT", 7.0),
        ("Thu, 26 Nov 2026 17:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, retry_after_max=60.0)
    for retry_number, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        waits = [backoff.seconds(retry_number, None) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2, "jitter should spread over the whole range"


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, retry_after_max=30.0)
    assert all(5.0 <= backoff.seconds(1, 5.0) <= 5.1 for _ in range(100))
    assert all(30.0 <= backoff.seconds(1, 3600.0) <= 30.1 for _ in range(100))

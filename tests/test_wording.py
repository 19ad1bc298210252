"""transform.wording: one is singular, every other count plural."""

import pytest

from transform.wording import counted


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 conversations"),
        (1, "1 conversation"),
        (2, "2 conversations"),
        (1000, "1,000 conversations"),
    ],
)
def test_counted(count: int, expected: str):
    assert counted(count, "conversation") == expected


def test_an_irregular_plural():
    assert (counted(1, "entry", "entries"), counted(3, "entry", "entries")) == (
        "1 entry",
        "3 entries",
    )

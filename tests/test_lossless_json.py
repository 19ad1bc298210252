"""transform.lossless_json: any valid JSON decodes and re-encodes to an equal value, exactly."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from transform.lossless_json import MAX_DEPTH, NotJson, dumps, loads

HOSTILE = [
    b"12345678901234567890123",
    b"-9223372036854775809",
    b"[99999999999999999999, 18446744073709551615, -1]",
    b'{"deep": ' + b"[" * 1000 + b"1" + b"]" * 1000 + b"}",
    b'"a\\u0000b"',
    b'"\\ud83d\\ude80 a pair of surrogates is one character"',
    '{"k": "café 日本語 🚀"}'.encode(),
    b"1.5e300",
]


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Let the test's own reading and comparing recurse as deep as its bodies go."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(previous + 4_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_json_round_trips_exactly(body: bytes):
    value = loads(body)
    with deep_recursion():
        assert value == json.loads(body)
        assert json.loads(dumps(value)) == value
    dumps(value).decode("utf-8")  # always valid UTF-8, so it fits a DuckDB VARCHAR


def test_a_long_integer_stays_an_int():
    assert loads(b'{"n": 99999999999999999999}') == {"n": 99999999999999999999}
    # 19 digits, past the 64-bit range; the shortest run that takes the exact path.
    assert loads(b"[9999999999999999999, -9999999999999999999]") == [
        9999999999999999999,
        -9999999999999999999,
    ]
    assert loads(b'{"id": "x0123456789012345678y", "n": 10000000000000000000}') == {
        "id": "x0123456789012345678y",
        "n": 10000000000000000000,
    }
    assert dumps(loads(b"[99999999999999999999]")) == b"[99999999999999999999]"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 2 * MAX_DEPTH + b"]" * 2 * MAX_DEPTH, f"deeper than {MAX_DEPTH} levels"),
        (b"{not json", "not JSON: "),
        (b"[NaN]", "not JSON: NaN is not valid JSON"),
        (b"[1] 12345678901234567890", "not JSON: Extra data"),
        (b'"\xff"', "not JSON: "),
        (b'{"k": "lone \\ud800 high"}', r"lone surrogate \(\\ud800\), which DuckDB cannot store"),
        (b'{"lone \\udc00 low": 1}', r"lone surrogate \(\\udc00\)"),
    ],
)
def test_what_is_not_json_is_one_reason(body: bytes, reason: str):
    with pytest.raises(NotJson, match=reason) as raised:
        loads(body)
    assert "\n" not in str(raised.value)


def test_a_lone_surrogate_is_encoded_escaped_in_ascii():
    assert dumps(["caf\u00e9", "\ud800"]) == b'["caf\\u00e9", "\\ud800"]'

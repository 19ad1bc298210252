"""Decode and encode any valid JSON the API may send, losslessly: orjson first, the stdlib after.

orjson is fast but not total: it reads integers beyond 64 bits as floats (silently: 20 digits
become ``1e+20``), refuses nesting deeper than 1024 levels when decoding and 255 when encoding,
and refuses lone surrogates escaped in strings (``"\\ud800"``). The standard library takes all of
them, so it serves whatever orjson refuses or would round, with a recursion allowance raised to
``MAX_DEPTH`` levels while it runs. Encoding keeps UTF-8 unless a string holds a lone surrogate,
which only an ASCII ``\\uXXXX`` escape can carry.
"""

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

# Deeper than this (and a little more), a body is refused with a one-line reason (the stdlib
# recurses once per level, on a thread stack of 8 MiB: 10,000 levels use a small part of it).
MAX_DEPTH = 10_000
# An integer of 19 digits or more may lie outside the 64-bit range that orjson keeps exact. With
# every digit made "0", such a run is 19 zeros in a row: a translate and a substring search cost
# ~6 us on a 4 KB body, where the regex \d{19} cost ~60 us (more than orjson's decoding, 9 us).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19
_allowance = threading.Lock()


class NotJson(ValueError):
    """A body that is not JSON, is nested deeper than MAX_DEPTH, or holds a lone surrogate.

    DuckDB's JSON type (yyjson) refuses a lone surrogate, valid as it is in JSON's grammar, and
    replacing it would store something else: such a body is refused, with the reason.
    Its message is one line.
    """


def loads(body: bytes) -> object:
    """The JSON value of ``body`` (UTF-8), exactly: every integer an int, every string kept."""
    if _LONG_DIGIT_RUN not in body.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        with _recursion_allowance():
            value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise NotJson(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise NotJson(f"not JSON: {error}") from None
    surrogate = _lone_surrogate(value)
    if surrogate is not None:
        raise NotJson(f"JSON with a lone surrogate (\\u{surrogate:04x}), which DuckDB cannot store")
    return value


def dumps(value: object) -> bytes:
    """UTF-8 JSON of a value ``loads`` returned; loading it again gives an equal value."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        pass
    with _recursion_allowance():
        try:
            return _stdlib_dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return _stdlib_dumps(value, ensure_ascii=True).encode("ascii")


def _stdlib_dumps(value: object, ensure_ascii: bool) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, allow_nan=False)


def _lone_surrogate(value: object) -> int | None:
    """The first lone surrogate in any string or key of a value, walked without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if item.__class__ is dict:
            pending.extend(item)
            pending.extend(item.values())
        elif item.__class__ is list:
            pending.extend(item)
        elif item.__class__ is str:
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as error:
                return ord(item[error.start])
    return None


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON: refuse them as orjson does."""
    raise ValueError(f"{name} is not valid JSON")


@contextmanager
def _recursion_allowance() -> Iterator[None]:
    """Let the stdlib recurse MAX_DEPTH levels beyond this frame, one caller at a time."""
    with _allowance:
        previous = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous, MAX_DEPTH + 2_000))
        try:
            yield
        finally:
            sys.setrecursionlimit(previous)

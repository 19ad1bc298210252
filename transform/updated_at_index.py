"""The incremental state, kept compact: stored ids and their updated_at in sorted Arrow buffers.

A dict of a million ids and datetimes holds ~170 MB of Python objects; here the ids' bytes, their
offsets and the timestamps sit in Arrow buffers (~55 MB), read through memoryviews, and an id is
found by binary search (~20 comparisons of a few dozen bytes).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL = -(2**63)


class UpdatedAtIndex(Mapping[str, datetime | None]):
    """Each stored conversation's updated_at by id, from an Arrow table (id, updated_at)."""

    def __init__(self, rows: pa.Table) -> None:
        rows = rows.sort_by("id")  # by UTF-8 bytes: the order of the encoded keys below
        ids = rows.column("id").combine_chunks().cast(pa.large_string())
        micros = rows.column("updated_at").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        micros = pc.fill_null(micros, _NULL).combine_chunks()
        self._arrays = (ids, micros)  # the buffers below stay alive with their arrays
        self._size = len(ids)
        self._offsets = _int64s(ids.buffers()[1], ids.offset, self._size + 1)
        self._data = memoryview(ids.buffers()[2] or b"")
        self._micros = _int64s(micros.buffers()[1], micros.offset, self._size)
        self._last: tuple[str, int] | None = None

    def _id_at(self, position: int) -> bytes:
        return bytes(self._data[self._offsets[position] : self._offsets[position + 1]])

    def _position(self, key: object) -> int:
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        if not isinstance(key, str):
            raise KeyError(key)
        encoded = key.encode()
        at = bisect_left(range(self._size), encoded, key=self._id_at)
        if at == self._size or self._id_at(at) != encoded:
            raise KeyError(key)
        self._last = (key, at)
        return at

    def __getitem__(self, key: object) -> datetime | None:
        micros = self._micros[self._position(key)]
        return None if micros == _NULL else _EPOCH + timedelta(microseconds=micros)

    def __contains__(self, key: object) -> bool:
        try:
            self._position(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return (self._id_at(position).decode() for position in range(self._size))

    def __len__(self) -> int:
        return self._size


def _int64s(buffer: pa.Buffer | None, offset: int, count: int) -> memoryview:
    """``count`` int64 values of an Arrow buffer, from element ``offset``."""
    return memoryview(buffer or b"").cast("q")[offset : offset + count]

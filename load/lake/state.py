"""The incremental state read from the lake, kept compact: two sorted Arrow arrays.

A dict of a million ids and datetimes holds ~250 MB of Python objects; the Arrow arrays hold
~50 MB (the ids' bytes, 8 bytes a timestamp), and an id is found by binary search (~20 reads
of one element each).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from datetime import datetime

import pyarrow as pa


class UpdatedAtIndex(Mapping[str, datetime | None]):
    """Each stored conversation's updated_at by id, from an Arrow table (id, updated_at)."""

    def __init__(self, rows: pa.Table) -> None:
        rows = rows.sort_by("id")  # by UTF-8 bytes: the order of Python's str comparisons
        self._ids = rows.column("id").combine_chunks()
        self._updated_at = rows.column("updated_at").combine_chunks()

    def _id_at(self, position: int) -> str:
        return self._ids[position].as_py()

    def _position(self, key: object) -> int:
        if not isinstance(key, str):
            raise KeyError(key)
        at = bisect_left(range(len(self._ids)), key, key=self._id_at)
        if at == len(self._ids) or self._id_at(at) != key:
            raise KeyError(key)
        return at

    def __getitem__(self, key: object) -> datetime | None:
        return self._updated_at[self._position(key)].as_py()

    def __contains__(self, key: object) -> bool:
        try:
            self._position(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids.to_pylist())

    def __len__(self) -> int:
        return len(self._ids)

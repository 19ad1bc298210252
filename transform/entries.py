"""Flatten conversation entries (history or messages) and their content chunks into Arrow tables.

Every entry type of both spec versions gets typed columns; any other type still gets a row with
its ``type`` and ``raw`` JSON, so entries the API adds later are never lost. The text of a
message and of a chunk is not flattened here: the warehouse reads it from ``raw``.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from transform.columns import bool_column, json_column, string_column, timestamp_column
from transform.schemas import CONTENT_CHUNKS, ENTRIES

History = tuple[str, Sequence[dict[str, Any]]]

_PLAIN_ENTRY_FIELDS = (
    "type",
    "role",
    "model",
    "agent_id",
    "tool_call_id",
    "name",
    "result",
    "previous_agent_id",
    "previous_agent_name",
    "next_agent_id",
    "next_agent_name",
    "confirmation_status",
)
_PLAIN_CHUNK_FIELDS = ("tool", "title", "file_id", "file_name", "file_type", "document_name")

# A chunk's `type` has a default in the spec, so a sender may omit it: recognise it by its key.
_CHUNK_TYPE_BY_KEY = (
    ("text", "text"),
    ("image_url", "image_url"),
    ("document_url", "document_url"),
    ("thinking", "thinking"),
    ("file_id", "tool_file"),
    ("title", "tool_reference"),
    ("reference_ids", "reference"),
)


def flatten_entries(
    conversation_id: str, entries: Sequence[dict[str, Any]], exported_run: str
) -> pa.Table:
    """One conversation's entries as an ENTRIES table (also used for the messages endpoint)."""
    return flatten_histories([(conversation_id, entries)], exported_run)


def flatten_histories(histories: Iterable[History], exported_run: str) -> pa.Table:
    """Many conversations' entries as one ENTRIES table, column by column for speed."""
    conversation_ids, positions, flat = _flat_entries(histories)
    columns: dict[str, Any] = {
        "conversation_id": conversation_ids,
        "id": string_column(_entry_ids(flat, positions)),
        "position": pa.array(positions, pa.int32()),
    }
    for field in _PLAIN_ENTRY_FIELDS:
        columns[field] = string_column([e.get(field) for e in flat])
    columns["created_at"] = timestamp_column([e.get("created_at") for e in flat])
    columns["completed_at"] = timestamp_column([e.get("completed_at") for e in flat])
    columns["prefix"] = bool_column([e.get("prefix") for e in flat])
    columns["arguments"] = json_column([e.get("arguments") for e in flat])
    columns["info"] = json_column([e.get("info") for e in flat])
    columns["raw"] = json_column(flat)
    columns["export_run"] = pa.repeat(pa.scalar(exported_run, pa.string()), len(flat))
    return pa.Table.from_pydict({f.name: columns[f.name] for f in ENTRIES}, schema=ENTRIES)


def flatten_content_chunks(
    conversation_id: str, entries: Sequence[dict[str, Any]], exported_run: str
) -> pa.Table:
    """One row per chunk of every list-valued ``content`` in one conversation's entries."""
    return flatten_histories_chunks([(conversation_id, entries)], exported_run)


def flatten_histories_chunks(histories: Iterable[History], exported_run: str) -> pa.Table:
    """CONTENT_CHUNKS rows of many conversations' entries (pass history, not messages)."""
    conversation_ids: list[str] = []
    entry_ids: list[str] = []
    indexes: list[int] = []
    chunks: list[Any] = []
    for conversation_id, entries in histories:
        for position, entry in enumerate(_checked_entries(conversation_id, entries)):
            content = entry.get("content")
            if content.__class__ is list:
                count = len(content)
                conversation_ids.extend([conversation_id] * count)
                entry_ids.extend([_entry_id(entry, position)] * count)
                indexes.extend(range(count))
                chunks.extend(content)
    if not all(c.__class__ is dict for c in chunks):
        chunks = [c if c.__class__ is dict else {"value": c} for c in chunks]
    columns: dict[str, Any] = {
        "conversation_id": conversation_ids,
        "entry_id": entry_ids,
        "chunk_index": pa.array(indexes, pa.int32()),
        "type": string_column([_chunk_type(c) for c in chunks]),
        "url": string_column([_chunk_url(c) for c in chunks]),
        "raw": json_column(chunks),
        "export_run": pa.repeat(pa.scalar(exported_run, pa.string()), len(chunks)),
    }
    for field in _PLAIN_CHUNK_FIELDS:
        columns[field] = string_column([c.get(field) for c in chunks])
    return pa.Table.from_pydict(
        {f.name: columns[f.name] for f in CONTENT_CHUNKS}, schema=CONTENT_CHUNKS
    )


def _flat_entries(histories: Iterable[History]) -> tuple[list[str], list[int], list[dict]]:
    """Concatenate the conversations' entries, with each entry's conversation id and position."""
    conversation_ids: list[str] = []
    positions: list[int] = []
    flat: list[dict[str, Any]] = []
    for conversation_id, entries in histories:
        checked = _checked_entries(conversation_id, entries)
        conversation_ids.extend([conversation_id] * len(checked))
        positions.extend(range(len(checked)))
        flat.extend(checked)
    return conversation_ids, positions, flat


def _checked_entries(
    conversation_id: str, entries: Sequence[dict[str, Any]]
) -> Sequence[dict[str, Any]]:
    """The entries themselves, after checking each is a JSON object (else a one-line error)."""
    for position, entry in enumerate(entries):
        if entry.__class__ is not dict:
            raise ValueError(
                f"entry {position} of conversation {conversation_id} is not a JSON object: "
                f"{type(entry).__name__}"
            )
    return entries


def _entry_ids(flat: list[dict[str, Any]], positions: list[int]) -> list[str]:
    """Each entry's id, or a stable stand-in for an entry that came without one."""
    ids = [e.get("id") for e in flat]
    if None in ids:
        return [_entry_id(e, p) for e, p in zip(flat, positions, strict=True)]
    return ids


def _entry_id(entry: dict[str, Any], position: int) -> str:
    """The entry's id; entries in requests may omit it, so fall back to its position."""
    entry_id = entry.get("id")
    return f"position:{position}" if entry_id is None else str(entry_id)


def _chunk_type(chunk: dict[str, Any]) -> str | None:
    """The chunk's declared type, or the one its keys imply when the sender left it out."""
    declared = chunk.get("type")
    if declared is not None:
        return declared
    for key, chunk_type in _CHUNK_TYPE_BY_KEY:
        if key in chunk:
            return chunk_type
    return None


def _chunk_url(chunk: dict[str, Any]) -> str | None:
    """The URL a chunk points at: image_url (string or ``{url}``), document_url, or a reference."""
    image_url = chunk.get("image_url")
    if image_url is not None:
        return image_url.get("url") if image_url.__class__ is dict else image_url
    document_url = chunk.get("document_url")
    return chunk.get("url") if document_url is None else document_url

"""Decode fetched history and messages bodies and flatten them, with their conversations, to rows.

A 2xx body that is not the JSON the spec says (not JSON, not an object, no list under its key)
rejects its conversation, never the batch: the run records it as a failure, like a failed call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from transform import lossless_json
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks


@dataclass(frozen=True)
class RejectedBody:
    """A conversation whose history or messages body was not the JSON the spec says."""

    conversation_id: str
    operation: str
    message: str


class _UnexpectedBody(ValueError):
    """A 2xx body that is not the JSON object, with a list under its key, that the spec says."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.message = message


def flatten_bodies(
    fetched: Iterable[tuple[dict, bytes, bytes]], run_id: str
) -> tuple[dict[str, pa.Table], list[RejectedBody]]:
    """The four export tables of (conversation, history body, messages body) triples, and every
    conversation rejected for a body that is not what the spec says.

    The decoded JSON (several times the size of its bytes) is freed when this returns, before
    the tables are written and merged: it never shares the peak with DuckDB's memory.
    """
    rejected: list[RejectedBody] = []
    conversations: list[dict] = []
    histories: list[tuple[str, list]] = []
    message_lists: list[tuple[str, list]] = []
    for conversation, history_body, messages_body in fetched:
        cid = conversation["id"]
        try:
            history = _listed(history_body, "history", "entries")
            messages = _listed(messages_body, "messages", "messages")
        except _UnexpectedBody as error:
            rejected.append(RejectedBody(cid, error.operation, error.message))
            continue
        conversations.append(conversation)
        histories.append((cid, history))
        message_lists.append((cid, messages))
    tables = {
        "conversations": flatten_conversations(conversations, run_id),
        "entries": flatten_histories(histories, run_id),
        "messages": flatten_histories(message_lists, run_id),
        "content_chunks": flatten_histories_chunks(histories, run_id),
    }
    return tables, rejected


def _listed(body: bytes, operation: str, key: str) -> list:
    """The list under ``key`` of a history or messages body (absent or null: no entries)."""
    try:
        parsed = lossless_json.loads(body)
    except lossless_json.NotJson as error:
        raise _UnexpectedBody(operation, f"response is {error}") from None
    if parsed.__class__ is not dict:
        raise _UnexpectedBody(
            operation, f"response is a JSON {type(parsed).__name__}, not an object"
        )
    listed = parsed.get(key) or []
    if listed.__class__ is not list:
        raise _UnexpectedBody(operation, f"response's {key!r} is not a list")
    return listed


def failure_row(
    run_id: str,
    conversation_id: str,
    operation: str,
    status: int | None,
    message: str,
    deleted: bool,
    failed_at: datetime,
) -> dict[str, Any]:
    """An export_failures row for a conversation that could not be fetched."""
    kind = "deleted after listing" if deleted else "failed"
    return {
        "run_id": run_id,
        "conversation_id": conversation_id,
        "endpoint": operation,
        "status": status,
        "reason": f"{kind}: {message}",
        "failed_at": failed_at,
    }

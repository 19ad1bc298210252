"""Flatten conversation objects (model or agent, either spec version) into a CONVERSATIONS table."""

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from transform.columns import json_column, string_column, timestamp_column
from transform.schemas import CONVERSATIONS, TIMESTAMP

_PLAIN_FIELDS = ("model", "agent_id", "name", "description", "instructions", "agent_version")
_JSON_FIELDS = ("tools", "completion_args", "metadata", "guardrails")


def conversation_kind(conversation: dict[str, Any]) -> str | None:
    """'agent' for a conversation with an agent, 'model' for one with a model, else None."""
    if conversation.get("agent_id") is not None:
        return "agent"
    if conversation.get("model") is not None:
        return "model"
    return None


def flatten_conversations(items: Sequence[dict[str, Any]], run_id: str) -> pa.Table:
    """One row per conversation, first and last exported by ``run_id`` (the merge keeps first).

    A listed or fetched conversation exists: its deleted_at and deleted_in_run are null.
    """
    for index, item in enumerate(items):
        if item.__class__ is not dict or not isinstance(item.get("id"), str):
            raise ValueError(f"conversation {index} of the batch has no string id: {item!r:.80}")
    run_column = pa.repeat(pa.scalar(run_id, pa.string()), len(items))
    columns: dict[str, Any] = {
        "id": [item["id"] for item in items],
        "kind": [conversation_kind(item) for item in items],
        "created_at": timestamp_column([item.get("created_at") for item in items]),
        "updated_at": timestamp_column([item.get("updated_at") for item in items]),
        "raw": json_column(items),
        "first_export_run": run_column,
        "last_export_run": run_column,
        "deleted_at": pa.nulls(len(items), TIMESTAMP),
        "deleted_in_run": pa.nulls(len(items), pa.string()),
    }
    for field in _PLAIN_FIELDS:
        columns[field] = string_column([item.get(field) for item in items])
    for field in _JSON_FIELDS:
        columns[field] = json_column([item.get(field) for item in items])
    return pa.Table.from_pydict(
        {f.name: columns[f.name] for f in CONVERSATIONS}, schema=CONVERSATIONS
    )

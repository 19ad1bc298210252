"""The request a replay row makes: start, append or restart, and the JSON body it sends."""

from typing import Any

from transform.prompts import PromptRow

START, APPEND, RESTART = "start", "append", "restart"


def turn_mode(row: PromptRow, later_turn: bool) -> str:
    """Start, append or restart: a thread's later turns append to the thread's conversation."""
    if later_turn:
        return APPEND
    if row.conversation_id is None:
        return START
    return RESTART if row.from_entry_id else APPEND


def request_body(row: PromptRow, mode: str) -> dict[str, Any]:
    """The JSON body for the row's operation (the client adds `stream`)."""
    body: dict[str, Any] = {"inputs": row.prompt}
    if row.completion_args:
        body["completion_args"] = dict(row.completion_args)
    if mode == RESTART:
        body["from_entry_id"] = row.from_entry_id
        if row.metadata is not None:
            body["metadata"] = row.metadata
    if mode != START:
        return body
    target = {"agent_id": row.agent_id} if row.agent_id else {"model": row.model}
    optional = {
        "instructions": row.instructions,
        "name": row.name,
        "description": row.description,
        "metadata": row.metadata,
    }
    return {**body, **target, **{k: v for k, v in optional.items() if v is not None}}

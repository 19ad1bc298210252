"""The request a replay row makes: start, append or restart, and the JSON body it sends.

The body is what the CSV says, key for key; the one addition is the run's tag in `metadata`
(start and restart), by which an ambiguous send is found again in the conversation list.
"""

from typing import Any

import orjson

from transform.prompts import PromptRow

START, APPEND, RESTART = "start", "append", "restart"
TAG_RUN, TAG_ROW, TAG_REPEAT = "convo_etl_run", "convo_etl_row", "convo_etl_repeat"


def turn_mode(row: PromptRow, later_turn: bool) -> str:
    """Start, append or restart: a thread's later turns append to the thread's conversation."""
    if later_turn:
        return APPEND
    if row.conversation_id is None:
        return START
    return RESTART if row.from_entry_id else APPEND


def run_tag(run_id: str, row_id: str, repeat_index: int) -> dict[str, str]:
    """The metadata that names the one conversation a (run, row, repeat) may start."""
    return {TAG_RUN: run_id, TAG_ROW: row_id, TAG_REPEAT: str(repeat_index)}


def request_body(row: PromptRow, mode: str, tag: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON body for the row's operation (the client adds `stream`)."""
    columns = row.request
    body: dict[str, Any] = {"inputs": row.prompt if columns.inputs is None else columns.inputs}
    if row.completion_args:
        body["completion_args"] = dict(row.completion_args)
    shared = {"store": columns.store, "handoff_execution": columns.handoff_execution}
    body |= {key: value for key, value in shared.items() if value is not None}
    if mode == APPEND:
        return body
    metadata = {**(row.metadata or {}), **(tag or {})} or None
    branch = {
        "metadata": metadata,
        "agent_version": columns.agent_version,
        "guardrails": columns.guardrails,
    }
    if mode == RESTART:
        body["from_entry_id"] = row.from_entry_id
        return body | {key: value for key, value in branch.items() if value is not None}
    target = {"agent_id": row.agent_id} if row.agent_id else {"model": row.model}
    optional = {
        "instructions": row.instructions,
        "tools": columns.tools,
        "name": row.name,
        "description": row.description,
        **branch,
    }
    return {**body, **target, **{k: v for k, v in optional.items() if v is not None}}


def function_result_inputs(
    calls: list[dict[str, Any]], results: dict[str, Any]
) -> list[dict[str, Any]] | str:
    """The `function.result` entries answering `calls` from the row's results, or the name of
    the first function the row has no result for."""
    entries = []
    for call in calls:
        name = call.get("name")
        if name not in results:
            return str(name)
        result = results[name]
        text = result if isinstance(result, str) else orjson.dumps(result).decode()
        entries.append(
            {"type": "function.result", "tool_call_id": call.get("tool_call_id"), "result": text}
        )
    return entries

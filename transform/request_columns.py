"""The prompt CSV's columns that carry the rest of a request: tools, JSON completion args,
agent version, store, handoff execution, guardrails, input entries and function results.

Each is checked here, before anything is sent; a problem is one line naming the column.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from transform.cells import shown

REQUEST_COLUMNS = (
    "tools",
    "completion_args",
    "agent_version",
    "store",
    "handoff_execution",
    "guardrails",
    "inputs",
    "function_results",
)
HANDOFF_EXECUTIONS = ("client", "server")
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")
# What each operation takes (the SDK's ConversationRequest / AppendRequest / RestartRequest).
START_ONLY_REQUEST = ("tools",)
START_OR_RESTART = ("agent_version", "guardrails")

Fail = Callable[[str, str], None]


@dataclass(frozen=True)
class RequestColumns:
    """A row's request columns, parsed; None means "not set" (the key is not sent)."""

    tools: list[Any] | None = None
    completion_args: dict[str, Any] | None = None
    agent_version: int | str | None = None
    store: bool | None = None
    handoff_execution: str | None = None
    guardrails: list[Any] | None = None
    inputs: list[Any] | None = None
    function_results: dict[str, Any] | None = None


def parse_request_columns(
    cells: dict[str, str], fail: Fail, starts: bool, restarts: bool
) -> RequestColumns:
    """Parse the request columns of one row; every problem goes to ``fail(column, problem)``."""

    def raw(column: str) -> str | None:
        return cells.get(column, "").strip() or None

    for column in START_ONLY_REQUEST:
        if raw(column) and not starts:
            fail(column, f"only a row that starts a conversation can set {column}")
    for column in START_OR_RESTART:
        if raw(column) and not (starts or restarts):
            fail(column, f"only a row that starts or restarts a conversation can set {column}")
    tools = _json_of(raw("tools"), "tools", list, "a JSON list", fail)
    guardrails = _json_of(raw("guardrails"), "guardrails", list, "a JSON list", fail)
    inputs = _json_of(raw("inputs"), "inputs", list, "a JSON list of entries", fail)
    if inputs is not None:
        _check_entries(inputs, fail)
    function_results = _json_of(
        raw("function_results"), "function_results", dict, "a JSON object", fail
    )
    return RequestColumns(
        tools=tools,
        completion_args=_json_of(
            raw("completion_args"), "completion_args", dict, "a JSON object", fail
        ),
        agent_version=_agent_version(raw("agent_version")),
        store=_store(raw("store"), fail),
        handoff_execution=_handoff(raw("handoff_execution"), fail),
        guardrails=guardrails,
        inputs=inputs,
        function_results=function_results,
    )


def _json_of(text: str | None, column: str, kind: type, expected: str, fail: Fail) -> Any | None:
    if text is None:
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        fail(column, f"{shown(text)} is not valid JSON")
        return None
    if not isinstance(parsed, kind):
        fail(column, f"{shown(text)} is not {expected}")
        return None
    return parsed


def _check_entries(inputs: list[Any], fail: Fail) -> None:
    if not inputs:
        fail("inputs", "the list of entries is empty")
    for position, entry in enumerate(inputs, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("type", "message.input"), str):
            fail("inputs", f"entry {position} is not a JSON object with a type")
        elif entry.get("type", "message.input") == "message.input" and "content" not in entry:
            fail("inputs", f"entry {position} (message.input) has no content")


def _agent_version(text: str | None) -> int | str | None:
    """A number is sent as a number, anything else as the API's string form (e.g. a tag)."""
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def _store(text: str | None, fail: Fail) -> bool | None:
    if text is None:
        return None
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    fail("store", f"{shown(text)} is not true or false")
    return None


def _handoff(text: str | None, fail: Fail) -> str | None:
    if text is None or text in HANDOFF_EXECUTIONS:
        return text
    fail("handoff_execution", f"{shown(text)} is not one of client, server")
    return None

"""Checks of start/append/restart bodies, with 422 details shaped as HTTPValidationError.

Hand-written rather than jsonschema: the checks run on every request and must stay cheap.
"""

from collections.abc import Callable
from typing import Any

import orjson

Detail = dict[str, Any]
Check = Callable[[Any, list], Detail | None]

_ENTRY_TYPES = (
    "message.input",
    "message.output",
    "function.result",
    "function.call",
    "tool.execution",
    "agent.handoff",
)


def _error(kind: str, loc: list, message: str, value: Any, ctx: dict | None = None) -> Detail:
    detail: Detail = {"type": kind, "loc": loc, "msg": message, "input": value}
    if ctx is not None:
        detail["ctx"] = ctx
    return detail


def _typed(kind: str, message: str, accepts: Callable[[Any], bool], nullable: bool) -> Check:
    def check(value: Any, loc: list) -> Detail | None:
        if (value is None and nullable) or (value is not None and accepts(value)):
            return None
        return _error(kind, loc, message, value)

    return check


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_flag(value: Any) -> bool:
    return isinstance(value, bool)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_array(value: Any) -> bool:
    return isinstance(value, list)


def _is_version(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _one_of(*choices: str, nullable: bool) -> Check:
    expected = " or ".join(f"'{choice}'" for choice in choices)

    def check(value: Any, loc: list) -> Detail | None:
        if (value is None and nullable) or value in choices:
            return None
        ctx = {"expected": expected}
        return _error("literal_error", loc, f"Input should be {expected}", value, ctx)

    return check


def text(nullable: bool = True) -> Check:
    """A string field (or null)."""
    return _typed("string_type", "Input should be a valid string", _is_text, nullable)


def flag(nullable: bool) -> Check:
    """A boolean field (or null)."""
    return _typed("bool_type", "Input should be a valid boolean", _is_flag, nullable)


def mapping(nullable: bool) -> Check:
    """An object field (or null)."""
    return _typed("dict_type", "Input should be a valid dictionary", _is_object, nullable)


def array(nullable: bool) -> Check:
    """An array field (or null)."""
    return _typed("list_type", "Input should be a valid list", _is_array, nullable)


_VERSION = _typed("string_type", "Input should be a valid string or integer", _is_version, True)
_CONTENT = _typed(
    "string_type",
    "Input should be a valid string or list",
    lambda v: isinstance(v, str | list),
    False,
)
_ARGUMENTS = _typed(
    "string_type",
    "Input should be a valid string or dictionary",
    lambda v: isinstance(v, str | dict),
    False,
)
_REQUIRED_BY_ENTRY_TYPE: dict[str, dict[str, Check]] = {
    "message.input": {"role": _one_of("assistant", "user", nullable=False), "content": _CONTENT},
    "message.output": {"content": _CONTENT},
    "function.result": {"tool_call_id": text(False), "result": text(False)},
    "function.call": {"tool_call_id": text(False), "name": text(False), "arguments": _ARGUMENTS},
    "tool.execution": {"name": text(False), "arguments": text(False)},
    "agent.handoff": {
        "previous_agent_id": text(False),
        "previous_agent_name": text(False),
        "next_agent_id": text(False),
        "next_agent_name": text(False),
    },
}


def _check_inputs(value: Any, loc: list) -> Detail | None:
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return _error("string_type", loc, "Input should be a valid string or list", value)
    if not value:
        ctx = {"field_type": "List", "min_length": 1, "actual_length": 0}
        return _error(
            "too_short", loc, "List should have at least 1 item after validation, not 0", value, ctx
        )
    for index, item in enumerate(value):
        item_loc = [*loc, index]
        if not isinstance(item, dict):
            return _error("dict_type", item_loc, "Input should be a valid dictionary", item)
        entry_type = item.get("type", "message.input")
        if entry_type not in _ENTRY_TYPES:
            return _one_of(*_ENTRY_TYPES, nullable=False)(entry_type, [*item_loc, "type"])
        for name, check in _REQUIRED_BY_ENTRY_TYPE[entry_type].items():
            if name not in item:
                return _error("missing", [*item_loc, name], "Field required", item)
            problem = check(item[name], [*item_loc, name])
            if problem is not None:
                return problem
    return None


_COMMON: dict[str, Check] = {
    "inputs": _check_inputs,
    "completion_args": mapping(True),
    "guardrails": array(True),
    "metadata": mapping(True),
}

START_FIELDS: dict[str, Check] = _COMMON | {
    "stream": flag(True),
    "store": flag(True),
    "handoff_execution": _one_of("client", "server", nullable=True),
    "instructions": text(),
    "tools": array(True),
    "name": text(),
    "description": text(),
    "agent_id": text(),
    "agent_version": _VERSION,
    "model": text(),
}
APPEND_FIELDS: dict[str, Check] = _COMMON | {
    "stream": flag(False),
    "store": flag(False),
    "handoff_execution": _one_of("client", "server", nullable=False),
    "tool_confirmations": array(True),
}
RESTART_FIELDS: dict[str, Check] = APPEND_FIELDS | {
    "from_entry_id": text(False),
    "agent_version": _VERSION,
}


def decode_body(raw: bytes) -> tuple[Any, list[Detail]]:
    """The JSON body, or the 422 detail saying why it is not JSON."""
    try:
        return orjson.loads(raw), []
    except orjson.JSONDecodeError as error:
        ctx = {"error": str(error)}
        return None, [_error("json_invalid", ["body", error.pos], "JSON decode error", {}, ctx)]


def check_body(
    body: Any,
    fields: dict[str, Check],
    required: tuple[str, ...],
    extra_allowed: bool,
) -> list[Detail]:
    """Every problem with `body` against `fields`, as pydantic would report it (empty if valid)."""
    if not isinstance(body, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        return [_error("model_attributes_type", ["body"], message, body)]
    problems = [
        _error("missing", ["body", name], "Field required", body)
        for name in required
        if name not in body
    ]
    for name, value in body.items():
        check = fields.get(name)
        if check is None:
            if not extra_allowed:
                problems.append(
                    _error(
                        "extra_forbidden", ["body", name], "Extra inputs are not permitted", value
                    )
                )
            continue
        problem = check(value, ["body", name])
        if problem is not None:
            problems.append(problem)
    return problems


def check_start_target(body: dict) -> list[Detail]:
    """A start names exactly one of `model` and `agent_id`."""
    has_model = body.get("model") is not None
    has_agent = body.get("agent_id") is not None
    if has_model != has_agent:
        return []
    reason = "Exactly one of model or agent_id must be provided"
    return [_error("value_error", ["body"], f"Value error, {reason}", body, {"error": reason})]

"""Conversations (both spec versions, model and agent) flattened from a recorded list page."""

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from transform.conversations import flatten_conversations
from transform.schemas import CONVERSATIONS

FIXTURES = Path(__file__).parent / "fixtures"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_listed_conversations_rows_are_exact() -> None:
    items = orjson.loads((FIXTURES / "conversations_list.json").read_bytes())
    table = flatten_conversations(items, "run-7")
    assert table.schema == CONVERSATIONS
    rows = table.to_pylist()
    for row, item in zip(rows, items, strict=True):
        assert orjson.loads(row.pop("raw")) == item
    common = {
        "first_export_run": "run-7",
        "last_export_run": "run-7",
        "agent_version": None,
        "guardrails": None,
        "deleted_at": None,
        "deleted_in_run": None,
    }
    assert rows == [
        {
            "id": "conv_00000000000000000000000000000002",
            "kind": "agent",
            "model": None,
            "agent_id": "ag_0000000000000000000000000000000a",
            "name": "Billing question",
            "description": None,
            "instructions": None,
            "tools": None,
            "completion_args": None,
            "metadata": '{"team":"support","priority":2}',
            "created_at": _at("2026-11-25T09:00:00"),
            "updated_at": _at("2026-11-25T09:05:30.25"),
            **common,
            "agent_version": "3",
            "guardrails": '[{"block_on_error":false}]',
        },
        {
            "id": "conv_00000000000000000000000000000001",
            "kind": "model",
            "model": "mistral-large-latest",
            "agent_id": None,
            "name": None,
            "description": "Weather chat",
            "instructions": "Answer briefly.",
            "tools": '[{"type":"function","function":{"name":"get_weather","parameters":'
            '{"type":"object"}}},{"type":"web_search"}]',
            "completion_args": '{"temperature":0.3,"max_tokens":512}',
            "metadata": None,
            "created_at": _at("2026-11-24T23:59:59.999999"),
            "updated_at": _at("2026-11-25T00:00:01.000001"),
            **common,
        },
        {
            "id": "conv_00000000000000000000000000000003",
            "kind": "model",
            "model": "mistral-small-latest",
            "agent_id": None,
            "name": None,
            "description": None,
            "instructions": None,
            "tools": None,
            "completion_args": None,
            "metadata": None,
            "created_at": _at("2026-11-23T10:00:00"),
            "updated_at": _at("2026-11-23T10:00:00.5"),
            **common,
        },
    ]


def test_a_conversation_without_an_id_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"conversation 1 of the batch has no string id"):
        flatten_conversations([{"id": "conv_a"}, {"model": "m"}], "run-7")


def test_no_conversations_give_an_empty_table() -> None:
    table = flatten_conversations([], "run-7")
    assert table.num_rows == 0
    assert table.schema == CONVERSATIONS


def test_agent_version_and_guardrails_get_typed_columns() -> None:
    guardrails = [{"block_on_error": True, "moderation_llm_v1": {"custom_category_thresholds": {}}}]
    items = [
        {"id": "conv_a", "agent_id": "ag_1", "agent_version": 3},
        {"id": "conv_b", "agent_id": "ag_1", "agent_version": "7"},
        {"id": "conv_c", "model": "m", "guardrails": guardrails},
    ]
    rows = flatten_conversations(items, "run-7").to_pylist()
    assert [r["agent_version"] for r in rows] == ["3", "7", None]
    assert [r["guardrails"] for r in rows] == [None, None, orjson.dumps(guardrails).decode()]
    assert {(r["deleted_at"], r["deleted_in_run"]) for r in rows} == {(None, None)}

"""Any valid JSON a server returns is stored losslessly, end to end through the export flow."""

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from canned_api import (
    CannedConversation,
    canned_api,
    conversation_object,
    history_body,
    messages_body,
)

from flows.export.flow import export_conversations
from transform.lossless_json import MAX_DEPTH

pytestmark = pytest.mark.usefixtures("prefect_harness")

BIG = "123456789012345678901234567890"
DEEP = 1000
ENTRIES = (
    '[{"object":"entry","type":"message.input","id":"e-big","role":"user",'
    '"created_at":"2026-11-20T09:00:00Z","content":"big","count":' + BIG + ","
    '"small":18446744073709551615,"negative":-9223372036854775809},'
    '{"object":"entry","type":"message.output","id":"e-deep","role":"assistant",'
    '"created_at":"2026-11-20T09:00:01Z","content":"deep","info":{"tree":'
    + "[" * DEEP
    + "7"
    + "]" * DEEP
    + "}},"
    '{"object":"entry","type":"message.input","id":"e-odd","role":"user",'
    '"created_at":"2026-11-20T09:00:02Z",'
    '"content":"nul \\u0000 pair \\ud83d\\ude80 caf\\u00e9 日本語"}]'
)


def stored(data_dir: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(query).fetchall()


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Let the test read and compare values nested as deep as its bodies."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(previous + 3 * DEEP)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def test_big_integers_deep_nesting_nul_and_lone_surrogates_are_stored_exactly(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    too_deep = "[" * 2 * MAX_DEPTH + "]" * 2 * MAX_DEPTH
    bodies = {
        "c-hostile": history_body("c-hostile", ENTRIES.encode()),
        "c-plain": history_body("c-plain", b'[{"type":"message.input","id":"e1","content":"hi"}]'),
        "c-too-deep": history_body("c-too-deep", too_deep.encode()),
        "c-surrogate": history_body("c-surrogate", b'[{"id":"e2","content":"lone \\ud800"}]'),
    }
    canned = {
        cid: CannedConversation(conversation_object(cid), body, messages_body(cid))
        for cid, body in bodies.items()
    }
    with canned_api(canned) as url:
        summary = asyncio.run(
            export_conversations(data_dir=str(data_dir), base_url=url, max_failures=2)
        )
    assert (summary.fetched, summary.failed) == (2, 2)

    raws = dict(stored(data_dir, "select id, raw::varchar from entries"))
    info = stored(data_dir, "select info::varchar from entries where id = 'e-deep'")[0][0]
    with deep_recursion():
        expected = json.loads(ENTRIES)
        assert {k: json.loads(v) for k, v in raws.items() if k != "e1"} == {
            e["id"]: e for e in expected
        }
        assert json.loads(info) == expected[1]["info"]
    # The 30-digit integer is the same digits in the stored text, not a float.
    assert BIG in raws["e-big"]
    assert stored(
        data_dir, "select (raw->>'count')::hugeint::varchar from entries where id = 'e-big'"
    ) == [(BIG,)]
    text = stored(data_dir, "select text from entries where id = 'e-odd'")[0][0]
    assert text == "nul \x00 pair 🚀 café 日本語"

    failures = stored(
        data_dir, "select conversation_id, endpoint, reason from export_failures order by 1"
    )
    assert failures == [
        (
            "c-surrogate",
            "history",
            "failed: response is JSON with a lone surrogate (\\ud800), which DuckDB cannot store",
        ),
        (
            "c-too-deep",
            "history",
            f"failed: response is JSON nested deeper than {MAX_DEPTH} levels",
        ),
    ]

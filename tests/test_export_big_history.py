"""One very large history among ordinary ones is stored exactly, with the rest of its batch.

DuckDB's 64 MB cap once refused it (`Out of Memory Error ... 64.0 MiB`): the merge now sizes
the cap to the batch. About 60 MB here keeps the test to well under a minute; bench-style peak
RSS numbers for 100 MB are in the hardening report, not asserted here.
"""

import asyncio
from pathlib import Path

import duckdb
import orjson
import pytest
from canned_api import (
    CannedConversation,
    canned_api,
    conversation_object,
    history_body,
    message_entry,
    messages_body,
)

from flows.export.flow import export_conversations

pytestmark = pytest.mark.usefixtures("prefect_harness")

ENTRY_TEXT_CHARS = 100_000
BIG_ENTRIES = 600  # 600 entries of 100,000 characters: a 60 MB history


def test_a_60_mb_history_is_stored_exactly_with_its_batch(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    texts = {
        "c-big": [chr(ord("a") + i % 26) * ENTRY_TEXT_CHARS for i in range(BIG_ENTRIES)],
        **{f"c-small-{n}": [f"hello {n}", "bye"] for n in range(3)},
    }
    canned = {}
    for cid, entry_texts in texts.items():
        entries = orjson.dumps([message_entry(cid, i, t) for i, t in enumerate(entry_texts)])
        canned[cid] = CannedConversation(
            conversation_object(cid), history_body(cid, entries), messages_body(cid)
        )
    assert len(canned["c-big"].history) > 60_000_000
    with canned_api(canned) as url:
        summary = asyncio.run(export_conversations(data_dir=str(data_dir), base_url=url))
    assert (summary.fetched, summary.failed) == (4, 0)

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        stored = connection.execute(
            "select conversation_id, list(text order by position), sum(length(raw)) "
            "from entries group by 1"
        ).fetchall()
        chunks = connection.execute("select count(*) from content_chunks").fetchone()
    by_id = {cid: (entry_texts, raw_chars) for cid, entry_texts, raw_chars in stored}
    assert {cid: entry_texts for cid, (entry_texts, _) in by_id.items()} == texts
    assert by_id["c-big"][1] > 60_000_000
    assert chunks == (BIG_ENTRIES + 6,)

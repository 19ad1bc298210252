"""Storing a fetched batch: bodies that are not what the spec says fail their conversation only."""

from datetime import UTC, datetime
from pathlib import Path

from emulator.store import ConversationStore
from flows.export.fetch import FetchedBatch, FetchedConversation
from flows.export.store import store_fetched_batch
from load.warehouse import open_warehouse
from transform.workspaces import DEFAULT_WORKSPACE

RUN_ID = "run-store-test"


def test_a_body_that_is_not_the_spec_json_fails_its_conversation_and_the_rest_is_stored(
    tmp_path: Path,
) -> None:
    store = ConversationStore(conversations=4, seed=5)
    listed = store.conversations_newest_first()
    good, not_json, not_object, entries_not_list = listed
    batch = FetchedBatch(
        number=1,
        conversations=[
            FetchedConversation(
                good, store.history_json(good["id"]), store.messages_json(good["id"])
            ),
            FetchedConversation(not_json, b"<html>oops</html>", b"{}"),
            FetchedConversation(not_object, b"{}", b"[1, 2]"),
            FetchedConversation(entries_not_list, b'{"entries": "none"}', b"{}"),
        ],
        failures=[],
        finished_at=datetime.now(UTC),
    )
    warehouse = open_warehouse(tmp_path)
    try:
        counts = store_fetched_batch(warehouse, batch, RUN_ID, tmp_path, DEFAULT_WORKSPACE)
        stored = warehouse.execute("select id from conversations").fetchall()
        entries = warehouse.execute("select count(*) from entries").fetchone()
        failures = warehouse.execute(
            "select conversation_id, endpoint, status, reason from export_failures order by 1"
        ).fetchall()
    finally:
        warehouse.close()

    assert stored == [(good["id"],)]
    assert counts.conversations == 1
    assert entries == (len(store.history(good["id"])),) == (counts.entries,)
    assert sorted((f.conversation_id, f.operation) for f in counts.failures) == sorted(
        [
            (not_json["id"], "history"),
            (not_object["id"], "messages"),
            (entries_not_list["id"], "history"),
        ]
    )
    reasons = {cid: (endpoint, status, reason) for cid, endpoint, status, reason in failures}
    assert reasons[not_json["id"]][:2] == ("history", 200)
    assert "response is not JSON" in reasons[not_json["id"]][2]
    assert "is a JSON list, not an object" in reasons[not_object["id"]][2]
    assert "'entries' is not a list" in reasons[entries_not_list["id"]][2]

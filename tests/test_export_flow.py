"""The export flow end to end: real emulator on loopback, real Parquet and DuckDB, real Prefect."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from prefect.artifacts import Artifact

from emulator.server import RunningEmulator
from extract.pager import DEFAULT_WINDOW
from flows.export.flow import TooManyFailures, export_conversations
from flows.export.store import StoreFailed
from flows.export.summary import ExportSummary

pytestmark = pytest.mark.usefixtures("prefect_harness", "api_key")

MESSAGE_TYPES = ("message.input", "message.output")


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The flow reads its key from the environment only; the emulator accepts any non-empty one."""
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    return "test-key"


def export(emu: RunningEmulator, data_dir: Path, **options: Any) -> ExportSummary:
    """Run the export flow against ``emu`` into ``data_dir``."""
    return asyncio.run(export_conversations(data_dir=str(data_dir), base_url=emu.url, **options))


def rows(data_dir: Path, query: str, *params: object) -> list[tuple]:
    """Rows of a query on the warehouse, read-only."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(query, list(params)).fetchall()


def expected_text(content: object) -> str | None:
    """A message's text as the entries table should hold it: the string, or its text chunks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            c["text"] for c in content if isinstance(c, dict) and c.get("type") == "text"
        )
    return None


def assert_warehouse_equals_emulator(data_dir: Path, emu: RunningEmulator) -> None:
    """Every conversation, entry and message of the emulator is in the warehouse, exactly once."""
    store = emu.store
    expected_ids = {c["id"] for c in store.conversations_newest_first()}
    stored = dict(rows(data_dir, "select id, raw from conversations"))
    assert set(stored) == expected_ids
    for cid, raw in stored.items():
        assert orjson.loads(raw) == store.conversation(cid)
    entries: dict[str, list[tuple]] = {}
    for cid, position, entry_id, raw, text in rows(
        data_dir,
        "select conversation_id, position, id, raw, text from entries "
        "order by conversation_id, position",
    ):
        entries.setdefault(cid, []).append((position, entry_id, orjson.loads(raw), text))
    messages: dict[str, list[dict]] = {}
    for cid, raw in rows(
        data_dir, "select conversation_id, raw from messages order by conversation_id, position"
    ):
        messages.setdefault(cid, []).append(orjson.loads(raw))
    for cid in expected_ids:
        history = store.history(cid)
        got = entries.get(cid, [])
        assert [p for p, _, _, _ in got] == list(range(len(history)))
        assert [e for _, _, e, _ in got] == history
        assert [i for _, i, _, _ in got] == [e["id"] for e in history]
        for _, _, entry, text in got:
            if entry["type"] in MESSAGE_TYPES:
                assert text == expected_text(entry.get("content"))
        assert messages.get(cid, []) == [e for e in history if e["type"] in MESSAGE_TYPES]


def test_full_export_equals_the_emulator_row_for_row(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=45, seed=3)
    summary = export(emu, data_dir, batch_size=20, page_size=10)
    assert_warehouse_equals_emulator(data_dir, emu)
    assert (summary.listed, summary.fetched, summary.unchanged) == (45, 45, 0)
    assert (summary.failed, summary.deleted, summary.batches) == (0, 0, 3)
    counts = emu.store.request_counts
    assert (counts["history"], counts["messages"], counts["get"]) == (45, 45, 0)
    assert summary.entries_written == rows(data_dir, "select count(*) from entries")[0][0]
    assert summary.requests == sum(counts.values())
    assert summary.fetch_started is not None and summary.fetch_finished is not None
    assert summary.started_at <= summary.fetch_started <= summary.fetch_finished
    parts = {p.parent.name for p in (data_dir / "parquet").glob("*/*.parquet")}
    assert parts == {"conversations", "entries", "messages", "content_chunks"}
    run = rows(data_dir, "select status, mode, listed, fetched, requests from export_runs")
    assert run == [("completed", "incremental", 45, 45, summary.requests)]
    timings = rows(data_dir, "select fetch_started, fetch_finished from export_runs")
    assert timings == [(summary.fetch_started, summary.fetch_finished)]
    artifact = Artifact.get("export-summary")
    assert artifact is not None and summary.run_id in artifact.data
    assert "| fetched | 45 |" in artifact.data


def test_second_run_lists_only_and_a_changed_conversation_is_replaced(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=30, seed=5)
    export(emu, data_dir, page_size=10)
    emu.store.reset_counts()

    unchanged = export(emu, data_dir, page_size=10)
    # 30 conversations in pages of 10: three full pages and the empty one that ends the list,
    # plus at most window - 1 pages fetched ahead past the end.
    assert set(emu.store.request_counts) == {"list"}
    assert 4 <= emu.store.request_counts["list"] <= 4 + DEFAULT_WINDOW - 1
    assert (unchanged.listed, unchanged.fetched, unchanged.unchanged) == (30, 0, 30)

    touched = [c["id"] for c in emu.store.conversations_newest_first()[5:8]]
    for cid in touched:
        emu.store.touch(cid)
    emu.store.reset_counts()
    changed = export(emu, data_dir, page_size=10)
    counts = emu.store.request_counts
    assert (counts["history"], counts["messages"], counts["get"]) == (3, 3, 0)
    assert {cid for _, cid in emu.store.request_log if cid} == set(touched)
    assert (changed.fetched, changed.unchanged) == (3, 27)
    assert_warehouse_equals_emulator(data_dir, emu)
    first_runs = rows(data_dir, "select count(distinct first_export_run) from conversations")
    assert first_runs == [(1,)]


def test_full_refetches_everything(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=12, seed=2)
    export(emu, data_dir)
    emu.store.reset_counts()
    summary = export(emu, data_dir, full=True)
    assert (emu.store.request_counts["history"], summary.fetched) == (12, 12)
    assert_warehouse_equals_emulator(data_dir, emu)


def test_conversation_ids_are_fetched_through_get(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=10, seed=4)
    wanted = [c["id"] for c in emu.store.conversations_newest_first()[2:4]]
    summary = export(emu, data_dir, conversation_ids=[*wanted, wanted[0]])
    counts = emu.store.request_counts
    assert (counts["list"], counts["get"], counts["history"], counts["messages"]) == (0, 2, 2, 2)
    assert summary.fetched == 2
    assert sorted(r[0] for r in rows(data_dir, "select id from conversations")) == sorted(wanted)


@pytest.fixture
def adder() -> Iterator[Callable[[Callable[[], bool], Callable[[], None]], None]]:
    """Run ``act`` in a thread as soon as ``ready()`` holds (checked every millisecond)."""
    threads: list[threading.Thread] = []

    def start(ready: Callable[[], bool], act: Callable[[], None]) -> None:
        def wait_then_act() -> None:
            deadline = time.monotonic() + 30
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.001)
            act()

        thread = threading.Thread(target=wait_then_act, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    for thread in threads:
        thread.join(timeout=30)


def test_pages_shifting_during_listing_cause_no_duplicate_and_no_miss(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    adder: Callable[[Callable[[], bool], Callable[[], None]], None],
) -> None:
    emu = make_emulator(conversations=30, seed=6, latency_ms=15)
    at_start = {c["id"] for c in emu.store.conversations_newest_first()}
    added: list[str] = []

    def add_two() -> None:
        added.extend(emu.store.add_conversation()["id"] for _ in range(2))

    # New conversations land at the head between list pages, pushing every page down.
    adder(lambda: emu.store.request_counts["list"] >= 2, add_two)
    adder(lambda: emu.store.request_counts["list"] >= 4, add_two)
    summary = export(emu, data_dir, page_size=5, batch_size=7)

    assert len(added) == 4
    fetched = [cid for op, cid in emu.store.request_log if op == "history"]
    assert len(fetched) == len(set(fetched)), "a conversation was fetched twice"
    stored = {r[0] for r in rows(data_dir, "select id from conversations")}
    assert at_start <= stored
    assert summary.listed == len(stored) == summary.fetched

    export(emu, data_dir, page_size=5)
    assert_warehouse_equals_emulator(data_dir, emu)


def test_injected_faults_are_retried_to_a_complete_export(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=25, seed=8, fault_rate=0.2)
    summary = export(emu, data_dir, page_size=10)
    assert summary.retries > 0
    assert sum(emu.store.rejected_counts.values()) == summary.retries
    assert (summary.failed, summary.fetched) == (0, 25)
    emu.config.fault_rate = 0.0
    assert_warehouse_equals_emulator(data_dir, emu)


def test_a_conversation_deleted_after_listing_is_recorded_and_the_run_succeeds(
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    adder: Callable[[Callable[[], bool], Callable[[], None]], None],
) -> None:
    emu = make_emulator(conversations=20, seed=9, latency_ms=20)
    oldest = emu.store.conversations_newest_first()[-1]["id"]
    # One list page holds all 20; the oldest is in the last of four batches, fetched last.
    adder(lambda: emu.store.request_counts["history"] >= 1, lambda: emu.store.delete(oldest))
    summary = export(emu, data_dir, batch_size=5)

    assert (summary.listed, summary.fetched, summary.deleted, summary.failed) == (20, 19, 1, 0)
    failures = rows(data_dir, "select conversation_id, status, reason from export_failures")
    assert len(failures) == 1
    assert failures[0][:2] == (oldest, 404)
    assert failures[0][2].startswith("deleted after listing")
    assert rows(data_dir, "select status, deleted from export_runs") == [("completed", 1)]
    assert_warehouse_equals_emulator(data_dir, emu)


def test_failures_beyond_max_failures_fail_the_run_after_storing_the_rest(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=5, seed=10)
    real = emu.store.conversations_newest_first()[0]["id"]
    missing = "conv_" + "0" * 32
    with pytest.raises(TooManyFailures) as raised:
        export(emu, data_dir, conversation_ids=[real, missing])
    assert (raised.value.summary.fetched, raised.value.summary.failed) == (1, 1)
    assert "1 conversation could not be fetched (allowed: 0)" in str(raised.value)
    assert rows(data_dir, "select id from conversations") == [(real,)]
    assert rows(data_dir, "select conversation_id, endpoint, status from export_failures") == [
        (missing, "get", 404)
    ]
    assert rows(data_dir, "select status, failed from export_runs") == [("failed", 1)]

    allowed = export(emu, data_dir, conversation_ids=[missing], max_failures=1)
    assert (allowed.failed, allowed.fetched) == (1, 0)


@pytest.mark.timeout(90)
def test_a_batch_that_cannot_be_stored_fails_the_run_instead_of_hanging_it(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=40, seed=12)
    # A file where the entries' Parquet directory should be: every store fails, while the
    # listing, five batches ahead, waits on a full queue.
    (data_dir / "parquet").mkdir(parents=True)
    (data_dir / "parquet" / "entries").write_text("not a directory")
    with pytest.raises(StoreFailed, match=r"batch 1 could not be stored in .*File exists"):
        export(emu, data_dir, batch_size=5, page_size=40)
    assert rows(data_dir, "select status from export_runs") == [("failed",)]
    assert rows(data_dir, "select count(*) from conversations") == [(0,)]

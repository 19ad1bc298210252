"""Conversations deleted in the API: marked by a complete listing, left out of the views, purged.

Real flows against the emulator on loopback; a small proxy in front of it bends the list (a page
that breaks, a live conversation the list skips) when a scenario needs it.
"""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import httpx
import orjson
import pytest
from canned_api import loopback_server, send_json
from prefect.artifacts import Artifact
from typer.testing import CliRunner

from emulator.server import RunningEmulator
from extract.pager import ListingBroken
from flows.cli import app
from flows.export.flow import export_conversations
from flows.export.summary import ExportSummary

pytestmark = pytest.mark.usefixtures("prefect_harness", "api_key")

EXPORT_TABLES = {
    "conversations": "id",
    "entries": "conversation_id",
    "messages": "conversation_id",
    "content_chunks": "conversation_id",
}
# Rewrites one list page: (page number, the emulator's page) -> the body to serve.
ListHook = Callable[[int, list[dict]], Any]


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The flow reads its key from the environment only; the emulator accepts any non-empty one."""
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    return "test-key"


def export(url: str, data_dir: Path, **options: Any) -> ExportSummary:
    """Run the export flow against the API at ``url`` into ``data_dir``."""
    return asyncio.run(export_conversations(data_dir=str(data_dir), base_url=url, **options))


def rows(data_dir: Path, query: str, *params: object) -> list[tuple]:
    """Rows of a query on the warehouse, read-only."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(query, list(params)).fetchall()


def ids(data_dir: Path, query: str, *params: object) -> set[str]:
    """The first column of a query's rows, as a set."""
    return {row[0] for row in rows(data_dir, query, *params)}


def parquet_rows(data_dir: Path, table: str) -> list[tuple[str, str, str]]:
    """(part file name, conversation id, raw) of every row of a table's Parquet parts."""
    pattern = str(data_dir / "parquet" / table / "*.parquet")
    key = EXPORT_TABLES[table]
    with duckdb.connect() as connection:
        found = connection.execute(
            f"SELECT filename, {key}, raw FROM read_parquet(?, filename = true)", [pattern]
        ).fetchall()
    return sorted((Path(name).name, cid, raw) for name, cid, raw in found)


@contextmanager
def list_proxy(emu: RunningEmulator, hook: ListHook) -> Iterator[str]:
    """A loopback proxy to ``emu`` whose list pages ``hook`` rewrites; yields its URL."""
    upstream = httpx.Client(base_url=emu.url)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            answer = upstream.get(
                self.path, headers={"Authorization": self.headers.get("Authorization", "")}
            )
            body = answer.content
            url = urlsplit(self.path)
            if url.path == "/v1/conversations" and answer.status_code == 200:
                page = int(parse_qs(url.query)["page"][0])
                body = orjson.dumps(hook(page, orjson.loads(body)))
            send_json(self, answer.status_code, body)

        def log_message(self, *args: object) -> None:
            """Quiet: the tests assert on rows, not on logs."""

    with upstream, loopback_server(Handler) as url:
        yield url


def test_deleted_conversations_are_marked_counted_and_left_out_of_the_views(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=30, seed=21)
    export(emu.url, data_dir, page_size=10)
    listed = [c["id"] for c in emu.store.conversations_newest_first()]
    gone = [listed[0], listed[14], listed[29]]
    for cid in gone:
        emu.store.delete(cid)
    emu.store.reset_counts()

    summary = export(emu.url, data_dir, page_size=10)

    assert (summary.listed, summary.fetched, summary.marked_deleted) == (27, 0, 3)
    assert (summary.deleted, summary.failed, summary.purged) == (0, 0, 0)
    # Each absent conversation is confirmed with a get (404) before it is marked.
    assert sorted(cid for op, cid in emu.store.request_log if op == "get") == sorted(gone)
    marked = rows(data_dir, "select id, deleted_in_run from conversations where deleted_at notnull")
    assert sorted(marked) == sorted((cid, summary.run_id) for cid in gone)
    assert rows(
        data_dir,
        "select marked_deleted, deleted, purged from export_runs where run_id = ?",
        summary.run_id,
    ) == [(3, 0, 0)]
    artifact = Artifact.get("export-summary")
    assert artifact is not None and "| marked deleted | 3 |" in artifact.data

    live = set(listed) - set(gone)
    assert ids(data_dir, "select id from latest_conversations") == live
    assert ids(data_dir, "select id from live_conversations") == live
    assert ids(data_dir, "select conversation_id from live_entries") <= live
    assert rows(data_dir, "select sum(conversations) from conversation_lengths") == [(27,)]
    assert rows(data_dir, "select sum(new_conversations) from daily_usage") == [(27,)]
    assert rows(data_dir, "select sum(conversations) from model_agent_summary") == [(27,)]
    tool_calls = rows(
        data_dir,
        "select count(*) from entries where type in ('function.call', 'tool.execution') "
        "and conversation_id in (select id from live_conversations)",
    )
    assert rows(data_dir, "select coalesce(sum(calls), 0) from tool_usage") == tool_calls
    # The rows themselves stay until --purge-deleted.
    assert rows(data_dir, "select count(*) from conversations") == [(30,)]

    emu.store.reset_counts()
    again = export(emu.url, data_dir, page_size=10)
    assert (again.marked_deleted, emu.store.request_counts["get"]) == (0, 0)
    assert ids(data_dir, "select id from conversations where deleted_at notnull") == set(gone)


def test_a_marked_conversation_listed_again_is_unmarked(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=8, seed=22)
    back = emu.store.conversations_newest_first()[3]["id"]
    export(emu.url, data_dir)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as connection:
        # As an earlier run that found it gone would have left it.
        connection.execute(
            "update conversations set deleted_at = now(), deleted_in_run = 'earlier' where id = ?",
            [back],
        )
    summary = export(emu.url, data_dir)
    assert (summary.listed, summary.marked_deleted) == (8, 0)
    assert rows(data_dir, "select count(*) from conversations where deleted_at notnull") == [(0,)]
    assert back in ids(data_dir, "select id from latest_conversations")


def test_a_live_conversation_the_list_skips_is_not_marked(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=12, seed=23)
    export(emu.url, data_dir, page_size=5)
    skipped = emu.store.conversations_newest_first()[5]["id"]
    gone = emu.store.conversations_newest_first()[9]["id"]
    emu.store.delete(gone)

    # Offset pages shift when a conversation is deleted mid-walk: the list can skip a live one.
    def skip(page: int, items: list[dict]) -> list[dict]:
        return [c for c in items if c["id"] != skipped]

    # The proxy is another URL for the same API: the warehouse would refuse it as mixing.
    with list_proxy(emu, skip) as url:
        summary = export(url, data_dir, page_size=5, allow_mixed=True)
    assert summary.marked_deleted == 1
    assert ids(data_dir, "select id from conversations where deleted_at notnull") == {gone}


def test_a_conversation_id_run_marks_nothing(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=10, seed=24)
    export(emu.url, data_dir)
    listed = [c["id"] for c in emu.store.conversations_newest_first()]
    emu.store.delete(listed[1])
    emu.store.delete(listed[2])
    emu.store.reset_counts()

    summary = export(emu.url, data_dir, conversation_ids=[listed[0]], purge_deleted=True)

    assert (summary.fetched, summary.marked_deleted, summary.purged) == (1, 0, 0)
    assert emu.store.request_counts["list"] == 0
    assert rows(data_dir, "select count(*) from conversations where deleted_at notnull") == [(0,)]
    assert rows(data_dir, "select count(*) from latest_conversations") == [(10,)]


def test_a_listing_that_fails_midway_marks_nothing(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=30, seed=25)
    export(emu.url, data_dir, page_size=10)
    emu.store.delete(emu.store.conversations_newest_first()[25]["id"])

    def broken_after_first(page: int, items: list[dict]) -> Any:
        return items if page == 0 else {"detail": "the list broke"}

    with list_proxy(emu, broken_after_first) as url, pytest.raises(ListingBroken):
        export(url, data_dir, page_size=10, allow_mixed=True)
    assert rows(data_dir, "select count(*) from conversations where deleted_at notnull") == [(0,)]
    runs = rows(data_dir, "select status, marked_deleted from export_runs order by started_at")
    assert runs == [("completed", 0), ("failed", 0)]


def test_purge_deleted_removes_their_rows_from_duckdb_and_parquet(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=12, seed=26)
    export(emu.url, data_dir, batch_size=3, page_size=12)
    before = {table: parquet_rows(data_dir, table) for table in EXPORT_TABLES}
    parts: dict[str, list[str]] = {}
    for part, cid, _ in before["conversations"]:
        parts.setdefault(part, []).append(cid)
    whole_part, other_part = sorted(parts)[:2]
    # One part's three conversations (its parts empty out) and one of another part's.
    gone = set(parts[whole_part]) | {parts[other_part][0]}
    for cid in gone:
        emu.store.delete(cid)

    summary = export(emu.url, data_dir, purge_deleted=True)

    assert (summary.marked_deleted, summary.purged) == (4, 4)
    assert rows(data_dir, "select purged from export_runs where run_id = ?", summary.run_id) == [
        (4,)
    ]
    for table, key in EXPORT_TABLES.items():
        assert rows(
            data_dir, f"select count(*) from {table} where list_contains(?, {key})", list(gone)
        ) == [(0,)]
        after = parquet_rows(data_dir, table)
        assert after == [row for row in before[table] if row[1] not in gone]
        names = {p.name for p in (data_dir / "parquet" / table).iterdir()}
        assert whole_part not in names
        assert not [name for name in names if not name.endswith(".parquet")]
    assert rows(data_dir, "select count(*) from conversations") == [(8,)]
    stored = ids(data_dir, "select id from conversations")
    assert stored == {c["id"] for c in emu.store.conversations_newest_first()}
    for cid in stored:
        entries = rows(
            data_dir, "select raw from entries where conversation_id = ? order by position", cid
        )
        assert [orjson.loads(raw) for (raw,) in entries] == emu.store.history(cid)

    assert export(emu.url, data_dir, purge_deleted=True).purged == 0


def test_agent_version_guardrails_and_confirmation_status_get_typed_columns(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=40, seed=27)
    guardrails = [{"block_on_error": True, "moderation_llm_v1": None}]
    started = httpx.post(
        f"{emu.url}/v1/conversations",
        headers={"Authorization": "Bearer test-key"},
        json={"model": "mistral-small-latest", "inputs": "Hello", "guardrails": guardrails},
        timeout=30,
    )
    assert started.status_code == 200
    guarded = started.json()["conversation_id"]

    export(emu.url, data_dir)

    versions = rows(
        data_dir,
        "select agent_version, raw->>'agent_version' from conversations where kind = 'agent'",
    )
    assert versions and all(typed == raw for typed, raw in versions)
    assert {typed for typed, _ in versions} - {None}, "no agent conversation has a version"
    assert rows(data_dir, "select guardrails from conversations where id = ?", guarded) == [
        (orjson.dumps(guardrails).decode(),)
    ]
    calls = rows(
        data_dir,
        "select confirmation_status, raw->>'confirmation_status' from entries "
        "where type = 'function.call'",
    )
    assert calls and all(typed == raw for typed, raw in calls)


def test_the_cli_purges_on_request_and_prints_both_counts(
    make_emulator: Callable[..., RunningEmulator], data_dir: Path
) -> None:
    emu = make_emulator(conversations=9, seed=28)
    args = ["export", "--no-progress", "--base-url", emu.url, "--data-dir", str(data_dir)]
    assert CliRunner().invoke(app, args).exit_code == 0
    gone = [c["id"] for c in emu.store.conversations_newest_first()[2:4]]
    for cid in gone:
        emu.store.delete(cid)

    result = CliRunner().invoke(app, [*args, "--purge-deleted"])

    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    for label in ("marked deleted", "purged"):
        assert any(label in line and "2" in line.split() for line in lines), label
    assert any("deleted while running" in line and "0" in line.split() for line in lines)
    assert ids(data_dir, "select id from conversations") & set(gone) == set()

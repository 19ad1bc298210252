"""`convo-etl demo`: export from a local emulator, change a few conversations, export again.

It shows, on a fresh machine with no API key, the whole path a real export takes: the same flow,
the same client, the same warehouse, against `emulator` instead of api.mistral.ai.
"""

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator
from extract.client import ClientConfig, ConversationsClient
from flows.export.query import QueryFormat, open_read_only, print_result, read_view
from flows.export.run import run_export
from flows.prefect_api import prefect_api
from flows.settings import DEFAULT_DATA_DIR, api_key_for_runs
from load.warehouse import sql_text, warehouse_path
from transform.wording import counted

# The emulator's own key: it only guards a loopback server, it is not a secret.
DEMO_API_KEY = "convo-etl-demo"
# A little latency, as a real API has, so the progress bar has something to show.
DEMO_LATENCY_MS = 5.0
ANALYTICS_VIEWS = (
    ("Daily usage", "daily_usage"),
    ("Tool usage", "tool_usage"),
    ("Agent handoffs", "handoffs"),
    ("Conversation lengths", "conversation_lengths"),
)
VIEW_ROWS = 8
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class DemoRefused(Exception):
    """The data dir holds real exports the demo's synthetic data would mix into."""


def exports_from_elsewhere(data_dir: Path) -> list[str]:
    """Base URLs of the exports in ``data_dir`` that did not come from a local emulator."""
    if not warehouse_path(data_dir).exists():
        return []
    with open_read_only(data_dir) as reader:
        urls = reader.execute(sql_text("export/run_base_urls.sql")).fetchall()
    return sorted(url for (url,) in urls if url and urlsplit(url).hostname not in LOCAL_HOSTS)


async def change_conversations(base_url: str, count: int) -> list[str]:
    """Append a user turn to ``count`` conversations through the API, as a real user would."""
    if count == 0:
        return []
    config = ClientConfig(base_url=base_url, api_key=DEMO_API_KEY)
    async with ConversationsClient(config) as client:
        listed = await client.list_conversations(page=1, page_size=count)
        ids = [item["id"] for item in listed]
        await asyncio.gather(
            *(client.append_to_conversation(cid, {"inputs": "Any update on this?"}) for cid in ids)
        )
    return ids


def show_analytics(data_dir: Path, console: Console) -> None:
    """Print the first rows of a few analytics views."""
    for title, view in ANALYTICS_VIEWS:
        columns, rows = read_view(data_dir, view, VIEW_ROWS)
        console.rule(f"{title} ({view})")
        print_result(columns, rows, QueryFormat.TABLE, console)


def next_steps(data_dir: Path) -> str:
    """How to go on from the demo: more SQL, DuckDB itself, the real API."""
    flag = "" if data_dir == DEFAULT_DATA_DIR else f" --data-dir {data_dir}"
    return "\n".join(
        [
            "Query further:",
            f'  convo-etl sql "select * from latest_conversations limit 5"{flag}',
            f'  convo-etl sql "select type, count(*) from entries group by 1"{flag} --format csv',
            f"  duckdb {data_dir / 'warehouse.duckdb'}   (or read {data_dir / 'parquet'}/*/ "
            "with any Parquet reader)",
            "Export your real conversations (same command, real API, into its own directory):",
            "  MISTRAL_API_KEY=... convo-etl export --data-dir mistral-data",
            "Schedule it nightly on a Prefect server:",
            "  prefect server start   # then, in another shell:",
            "  MISTRAL_API_KEY=... PREFECT_API_URL=http://127.0.0.1:4200/api "
            'convo-etl schedule --cron "0 2 * * *"',
        ]
    )


def run_demo_exports(
    flow_kwargs: dict[str, Any], url: str, changes: int, console: Console, started: float
) -> None:
    """Export everything, change ``changes`` conversations through the API, export again."""
    console.rule("1. Full export")
    run_export({**flow_kwargs, "full": True}, console, "Full export", started)
    console.rule(f"2. Change {counted(changes, 'conversation')} through the API (append a turn)")
    changed = asyncio.run(change_conversations(url, changes))
    console.print(
        f"appended a user turn to {counted(len(changed), 'conversation')}", highlight=False
    )
    console.rule("3. Incremental export: only what changed is fetched")
    run_export(flow_kwargs, console, "Incremental export")


def run_demo(conversations: int, changes: int, data_dir: Path, console: Console) -> None:
    """Serve ``conversations`` synthetic conversations, export, change ``changes``, export again."""
    elsewhere = exports_from_elsewhere(data_dir)
    if elsewhere:
        raise DemoRefused(
            f"{data_dir} holds exports from {', '.join(elsewhere)}: give the demo its own "
            "directory with --data-dir"
        )
    console.print(
        f"starting the local emulator with {conversations:,} synthetic conversations...",
        highlight=False,
    )
    config = EmulatorConfig(
        conversations=conversations, api_key=DEMO_API_KEY, latency_ms=DEMO_LATENCY_MS
    )
    with spawn_emulator(config) as emulator:
        started = time.perf_counter()
        # The flow never takes its key as a parameter (so Prefect never stores it): in this
        # process, for these runs, that key is the emulator's.
        flow_kwargs = {
            "data_dir": str(data_dir),
            "base_url": emulator.url,
            "show_progress": True,
            "emulator": True,
        }
        with api_key_for_runs(DEMO_API_KEY), prefect_api(console):
            run_demo_exports(flow_kwargs, emulator.url, changes, console, started)
    show_analytics(data_dir, console)
    console.rule("Next")
    console.print(next_steps(data_dir), highlight=False, markup=False, soft_wrap=True)

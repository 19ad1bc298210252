"""`convo-etl demo` as `make demo` runs it: its own emulator process, two exports, the views."""

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from extract.pager import DEFAULT_WINDOW
from flows.cli import app
from flows.export.demo import ANALYTICS_VIEWS
from load.warehouse import open_warehouse, record_export_run
from transform.export_runs import export_run_table

CONVO_ETL = str(Path(sys.executable).parent / "convo-etl")


def summary_value(output: str, title: str, label: str) -> int:
    """A number from the summary table titled ``title`` in the demo's output."""
    table = output[output.index(title) :]
    match = re.search(rf"^\W*{label}\W+([\d,]+)\W*$", table, re.MULTILINE)
    assert match is not None, f"no {label!r} row after {title!r}"
    return int(match.group(1).replace(",", ""))


def test_demo_exports_changes_and_exports_only_the_changes(
    prefect_harness: None, data_dir: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    # The session's Prefect server stands in for the temporary one a fresh machine starts.
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env["COLUMNS"] = "160"
    result = subprocess.run(
        [
            CONVO_ETL,
            "demo",
            "--conversations",
            "120",
            "--changes",
            "7",
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert summary_value(out, "Full export", "fetched") == 120
    assert summary_value(out, "Incremental export", "fetched") == 7
    assert summary_value(out, "Incremental export", "unchanged") == 113
    # Two list pages, history and messages of the 7 changed, and pages fetched ahead past the end.
    requests = summary_value(out, "Incremental export", "requests")
    assert 2 + 7 * 2 <= requests <= 2 + 7 * 2 + DEFAULT_WINDOW - 1
    for title, view in ANALYTICS_VIEWS:
        assert f"{title} ({view})" in out
    assert 'convo-etl sql "select * from latest_conversations limit 5"' in out
    assert "MISTRAL_API_KEY=... convo-etl export --data-dir mistral-data" in out

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        runs = connection.execute(
            "select mode, status, fetched from export_runs order by started_at"
        ).fetchall()
        conversations = connection.execute("select count(*) from conversations").fetchone()
    assert runs == [("full", "completed", 120), ("incremental", "completed", 7)]
    assert conversations == (120,)


def test_demo_refuses_a_data_dir_holding_a_real_export(data_dir: Path) -> None:
    with open_warehouse(data_dir) as connection:
        run = export_run_table({"run_id": "real", "base_url": "https://api.mistral.ai"})
        record_export_run(connection, run)
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "holds exports from https://api.mistral.ai" in line and "--data-dir" in line

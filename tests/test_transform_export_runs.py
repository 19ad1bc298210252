"""Export run and failure rows: typed columns, UTC timestamps, no credentials in base_url."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from transform.export_runs import export_failures_table, export_run_table
from transform.schemas import EXPORT_FAILURES, EXPORT_RUNS


def test_run_row_is_typed_and_the_url_loses_credentials() -> None:
    paris = timezone(timedelta(hours=1))
    table = export_run_table(
        {
            "run_id": "run-1",
            "started_at": datetime(2026, 11, 26, 18, 0, tzinfo=paris),
            "finished_at": "2026-11-26T17:00:05.5Z",
            "status": "completed",
            "mode": "incremental",
            "listed": 10,
            "fetched": 4,
            "duration_s": 5.5,
            "base_url": "https://user:sk-secret@api.example.com:8443/v1?key=sk-secret#x",
        }
    )
    assert table.schema == EXPORT_RUNS
    row = table.to_pylist()[0]
    assert row["started_at"] == datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    assert row["finished_at"] == datetime(2026, 11, 26, 17, 0, 5, 500000, tzinfo=UTC)
    assert row["base_url"] == "https://api.example.com:8443/v1"
    assert (row["listed"], row["fetched"], row["failed"]) == (10, 4, None)


def test_unknown_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown export_runs columns: fetchd"):
        export_run_table({"run_id": "run-1", "fetchd": 3})


def test_failure_rows() -> None:
    table = export_failures_table(
        [
            {
                "run_id": "run-1",
                "conversation_id": "conv_a",
                "endpoint": "history",
                "status": 503,
                "reason": "retries exhausted",
                "failed_at": "2026-11-26T17:00:00Z",
            },
            {"run_id": "run-1", "endpoint": "list", "reason": "connect timeout"},
        ]
    )
    assert table.schema == EXPORT_FAILURES
    assert table.to_pylist()[1] == {
        "run_id": "run-1",
        "conversation_id": None,
        "endpoint": "list",
        "status": None,
        "reason": "connect timeout",
        "failed_at": None,
    }
    assert table.to_pylist()[0]["failed_at"] == datetime(2026, 11, 26, 17, tzinfo=UTC)

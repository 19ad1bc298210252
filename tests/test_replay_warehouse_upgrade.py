"""A warehouse whose replay tables predate a column (the response columns, the run's status) gains
it when a writer opens it."""

from pathlib import Path

from load.warehouse import open_warehouse
from transform.replay_schemas import REPLAY_RESULTS, REPLAY_RUNS

# The previous schema had none of the response columns, nor the matrix runs' variant.
ADDED = ("finish", "function_calls", "outputs", "usage", "last_agent_id", "variant")


def test_replay_results_of_the_previous_schema_upgrade_in_place(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    for column in ADDED:
        con.execute(f"ALTER TABLE replay_results DROP COLUMN {column}")
    con.close()
    con = open_warehouse(data_dir)
    try:
        names = [row[0] for row in con.execute("DESCRIBE replay_results").fetchall()]
    finally:
        con.close()
    assert names == REPLAY_RESULTS.names


def test_replay_runs_without_a_status_upgrade_to_completed_or_interrupted(data_dir: Path) -> None:
    con = open_warehouse(data_dir)
    con.execute("ALTER TABLE replay_runs DROP COLUMN status")
    for run_id, finished in (("finished", "now()"), ("never-finished", "NULL")):
        con.execute(
            f"INSERT INTO replay_runs VALUES ('{run_id}', now(), {finished}, 'p.csv', 1, 1, "
            "NULL, NULL, true, 'http://127.0.0.1:1', '{}')"
        )
    con.close()
    con = open_warehouse(data_dir)
    try:
        names = [row[0] for row in con.execute("DESCRIBE replay_runs").fetchall()]
        statuses = con.execute("SELECT run_id, status FROM replay_runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    assert names == REPLAY_RUNS.names
    assert statuses == [("finished", "completed"), ("never-finished", "interrupted")]

"""A warehouse whose replay_results predate the response columns gains them when opened."""

from pathlib import Path

from load.warehouse import open_warehouse
from transform.replay_schemas import REPLAY_RESULTS

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

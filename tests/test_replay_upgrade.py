"""A warehouse made before matrix runs gains the variant column ('' for its rows) when opened."""

from pathlib import Path

from load.warehouse import open_warehouse


def test_an_old_warehouse_gains_the_variant_column(data_dir: Path) -> None:
    with open_warehouse(data_dir) as con:
        for table in ("replay_results", "replay_events"):
            con.execute(f"ALTER TABLE {table} DROP COLUMN variant")
        con.execute("INSERT INTO replay_events VALUES ('r', 'a', 0, 0, 1, 'x', now(), 1.0, '{}')")
    with open_warehouse(data_dir) as con:
        for table in ("replay_results", "replay_events"):
            names = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            assert names[-1] == "variant"
        assert con.execute("SELECT variant FROM replay_events").fetchall() == [("",)]
        assert con.execute("SELECT count(*) FROM replay_verdicts").fetchall() == [(0,)]

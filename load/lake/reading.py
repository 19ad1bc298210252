"""Read the lake with DuckDB: each table's latest committed version, as an Arrow dataset.

No DuckDB extension is needed (none can be downloaded on these machines): delta-rs lists the
committed files and DuckDB scans them through Arrow. A reader never waits for a writer: it sees
each table as of its last commit (a batch's entries may show before its conversations).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from load.lake.schemas import LAKE_SCHEMAS
from load.lake.tables import Lake
from load.warehouse import sql_text
from transform.replay_schemas import REPLAY_RESULTS

# The tables whose text and content the lake does not store: registered under these names, and
# shown under their own by views deriving them from raw (sql/export/lake_tables.sql).
_DERIVED = {name: f"lake_{name}" for name in ("entries", "messages", "content_chunks")}


def lake_connection(url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's tables and the export's views (LakeError when a
    table cannot be opened). replay_results, which only the local warehouse holds, is empty."""
    lake = Lake(url)
    datasets = {name: table_dataset(lake, name) for name in LAKE_SCHEMAS}
    connection = duckdb.connect()
    for name, dataset in datasets.items():
        connection.register(_DERIVED.get(name, name), dataset)
    connection.register("replay_results", REPLAY_RESULTS.empty_table())
    connection.execute(sql_text("export/lake_tables.sql"))
    connection.execute(sql_text("export/views.sql"))
    return connection


def table_dataset(lake: Lake, name: str) -> ds.Dataset:
    """Table ``name``'s committed files as a dataset whose text columns are string_view, the
    type delta-rs writes them with: DuckDB pushes its filters down to the files, and Arrow has
    no kernel comparing a string_view column with a (large_)string value."""
    dataset = lake.table(name).to_pyarrow_dataset()
    schema = pa.schema(
        [
            field.with_type(pa.string_view()) if pa.types.is_string(field.type) else field
            for field in dataset.schema
        ]
    )
    return ds.FileSystemDataset(
        list(dataset.get_fragments()),
        schema=schema,
        format=dataset.format,
        filesystem=dataset.filesystem,
    )

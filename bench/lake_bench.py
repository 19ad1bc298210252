"""Measure the open table formats for the lake on an S3 server on loopback (moto's), side by side.

For each candidate that loads here: upsert N export batches (conversations merged by
(workspace, id), entries/messages/chunks replaced per conversation), re-upsert the first batch
(a re-fetch), read the current tables back with DuckDB and polars, count the bytes stored
against the API JSON's bytes, and run two writer processes into different workspaces at once.
Batches are real: emulator synthetic histories flattened by the export's own transform.
Wall-clock numbers on a shared machine: compare the rows, not the absolute values.

    python bench/lake_bench.py --batches 4
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from lake_support import (
    create_bucket,
    export_batch,
    s3_options,
    s3_server,
    synthetic_bodies,
)

TABLES = ("conversations", "entries", "messages", "content_chunks")
SEED = 0


@dataclass
class Row:
    """One candidate's measurements (seconds, bytes), or why it did not run."""

    name: str
    upsert_s: float = 0.0
    reupsert_s: float = 0.0
    duckdb_read_s: float = 0.0
    polars_read_s: float = 0.0
    stored_bytes: int = 0
    two_writers: str = ""
    not_run: str = ""


def _seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def stored_bytes(endpoint: str, bucket: str) -> int:
    """Every object's bytes in ``bucket`` (data files and table metadata alike)."""
    import boto3

    pages = boto3.client("s3", endpoint_url=endpoint).get_paginator("list_objects_v2")
    return sum(
        o["Size"] for page in pages.paginate(Bucket=bucket) for o in page.get("Contents", [])
    )


# ---- Delta Lake (delta-rs, the deltalake package) through load.lake -------------------------


def delta_available() -> str:
    """Empty when deltalake imports, else why not."""
    try:
        import deltalake  # noqa: F401
    except ImportError as error:
        return f"deltalake not installed ({error})"
    return ""


def delta_upsert(url: str, endpoint: str, workspace: str, tables: dict[str, pa.Table]) -> None:
    from load.lake.tables import Lake, upsert_batch

    upsert_batch(Lake(url, s3_options(endpoint)), workspace, tables)


def delta_create(url: str, endpoint: str) -> None:
    from load.lake.tables import open_lake

    open_lake(url, s3_options(endpoint))


def delta_read_duckdb(url: str, endpoint: str) -> dict[str, int]:
    from load.lake.tables import Lake

    lake, con = Lake(url, s3_options(endpoint)), duckdb.connect()
    counts = {}
    for name in TABLES:
        con.register(name, lake.table(name).to_pyarrow_table())
        counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    return counts


def delta_read_polars(url: str, endpoint: str) -> dict[str, int]:
    options = s3_options(endpoint)
    return {n: pl.read_delta(f"{url}/{n}", storage_options=options).height for n in TABLES}


# ---- DuckLake (DuckDB extension; catalog in a DuckDB file here, data on S3) -----------------


# DuckDB finds an extension's entry point by its file name; this package's file is misnamed.
INTERNAL_NAMES = {"postgres": "postgres_scanner"}


def load_packaged_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD the extension that PyPI's ``duckdb-extension-<name>`` ships, by its file path:
    ``LOAD <name>`` alone would try to download it. The file only loads into the DuckDB
    version it was built for (the package pins that version); postgres's must be linked under
    its internal name first."""
    import importlib

    package = importlib.import_module(f"duckdb_extension_{name}")
    folder = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    file = folder / f"{name}.duckdb_extension"
    internal = INTERNAL_NAMES.get(name)
    if internal:
        link = (
            Path(tempfile.gettempdir())
            / f"lake-bench-{os.getpid()}"
            / f"{internal}.duckdb_extension"
        )
        link.parent.mkdir(exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(file)
        file = link
    con.execute(f"LOAD '{file}'")


def ducklake_available() -> str:
    """Empty when DuckDB loads the packaged ducklake and httpfs extensions, else why not."""
    con = duckdb.connect()
    for extension in ("ducklake", "httpfs"):
        try:
            load_packaged_extension(con, extension)
        except ImportError:
            return f"duckdb-extension-{extension} not installed"
        except duckdb.Error as error:
            first = str(error).splitlines()[0]
            return f"duckdb {duckdb.__version__} cannot load {extension}: {first[:90]}"
    return ""


def _ducklake(url: str, endpoint: str, fresh: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with the lake at ``url`` attached as ``lake``; its catalog is a DuckDB file
    per bucket in the bench's temp folder, or a schema per bucket in the Postgres database of
    --ducklake-postgres (the only catalog that several processes can write at once)."""
    con = duckdb.connect()
    catalog = os.environ["LAKE_BENCH_CATALOG"]
    postgres = catalog.startswith("postgres:")
    for extension in ("ducklake", "httpfs", *(["postgres"] if postgres else [])):
        load_packaged_extension(con, extension)
    host = endpoint.removeprefix("http://")
    con.execute(
        "CREATE SECRET s3 (TYPE s3, KEY_ID $k, SECRET $s, ENDPOINT $e, URL_STYLE 'path', "
        "USE_SSL false, REGION 'us-east-1')",
        {"k": os.environ["AWS_ACCESS_KEY_ID"], "s": os.environ["AWS_SECRET_ACCESS_KEY"], "e": host},
    )
    bucket = url.removeprefix("s3://").split("/")[0].replace("-", "_")
    if postgres:
        con.execute(f"ATTACH '{catalog.removeprefix('postgres:')}' AS pg (TYPE postgres)")
        if fresh:
            con.execute(f"CALL postgres_execute('pg', 'DROP SCHEMA IF EXISTS {bucket} CASCADE')")
        con.execute(f"CALL postgres_execute('pg', 'CREATE SCHEMA IF NOT EXISTS {bucket}')")
        con.execute("DETACH pg")
        con.execute(
            f"ATTACH 'ducklake:{catalog}' AS lake (DATA_PATH '{url}/', METADATA_SCHEMA '{bucket}')"
        )
    else:
        con.execute(f"ATTACH 'ducklake:{catalog}/{bucket}.ducklake' AS lake (DATA_PATH '{url}/')")
    return con


def ducklake_create(url: str, endpoint: str) -> None:
    from load.lake.schemas import LAKE_SCHEMAS

    con = _ducklake(url, endpoint, fresh=True)
    for name in TABLES:
        con.register("empty", LAKE_SCHEMAS[name].empty_table())
        con.execute(f"CREATE TABLE lake.{name} AS SELECT * FROM empty")
        con.execute(f"ALTER TABLE lake.{name} SET PARTITIONED BY (workspace)")
        con.unregister("empty")


def ducklake_upsert(url: str, endpoint: str, workspace: str, tables: dict[str, pa.Table]) -> None:
    """The whole batch in one DuckLake transaction: all four tables or none."""
    from load.lake.schemas import WORKSPACE

    con = _ducklake(url, endpoint)
    for name, table in tables.items():
        column = pa.repeat(pa.scalar(workspace, pa.string()), table.num_rows)
        con.register(f"batch_{name}", table.add_column(0, WORKSPACE, column))
    columns = [f.name for f in tables["conversations"].schema if f.name != "first_export_run"]
    updates = ", ".join(f'"{c}" = s."{c}"' for c in columns)
    con.execute("BEGIN")
    for name in TABLES[1:]:
        con.execute(
            f"DELETE FROM lake.{name} WHERE workspace = $w AND conversation_id IN "
            "(SELECT id FROM batch_conversations)",
            {"w": workspace},
        )
        con.execute(f"INSERT INTO lake.{name} SELECT * FROM batch_{name}")
    con.execute(
        "MERGE INTO lake.conversations t USING batch_conversations s "
        "ON t.workspace = s.workspace AND t.id = s.id "
        f"WHEN MATCHED THEN UPDATE SET {updates} WHEN NOT MATCHED THEN INSERT *"
    )
    con.execute("COMMIT")


def ducklake_read_duckdb(url: str, endpoint: str) -> dict[str, int]:
    con = _ducklake(url, endpoint)
    return {n: con.execute(f"SELECT count(*) FROM lake.{n}").fetchall()[0][0] for n in TABLES}


def ducklake_read_polars(url: str, endpoint: str) -> dict[str, int]:
    """polars has no DuckLake reader: through DuckDB's Arrow output."""
    con = _ducklake(url, endpoint)
    return {n: pl.from_arrow(con.execute(f"FROM lake.{n}").arrow()).height for n in TABLES}


CANDIDATES = {
    "delta": (delta_available, delta_create, delta_upsert, delta_read_duckdb, delta_read_polars),
    "ducklake": (
        ducklake_available,
        ducklake_create,
        ducklake_upsert,
        ducklake_read_duckdb,
        ducklake_read_polars,
    ),
}


def writer(candidate: str, url: str, endpoint: str, workspace: str, batches: int, size: int):
    """A writer process's work: ``batches`` batches into ``workspace``."""
    upsert = CANDIDATES[candidate][2]
    total = batches * size
    for first in range(0, total, size):
        upsert(
            url, endpoint, workspace, export_batch(synthetic_bodies(SEED, first, size, total), "w")
        )


def two_writers(candidate: str, url: str, endpoint: str, size: int) -> str:
    """Two processes writing workspaces w1 and w2 at once: did both commit, and how long."""
    command = [sys.executable, __file__, "--writer", candidate, url, endpoint]
    started = time.perf_counter()
    processes = [
        subprocess.Popen([*command, w, str(size)], stderr=subprocess.PIPE, text=True)
        for w in ("w1", "w2")
    ]
    failures = []
    for process in processes:
        _, errors = process.communicate(timeout=600)
        if process.returncode:
            failures.append(errors.strip().splitlines()[-1][:100])
    seconds = time.perf_counter() - started
    counts = CANDIDATES[candidate][3](url, endpoint)
    if failures:
        return f"no ({len(failures)} failed: {failures[0]})"
    return f"yes, {seconds:.1f} s ({counts['conversations']} conversations)"


def measure(candidate: str, endpoint: str, batches: list[dict[str, pa.Table]], size: int) -> Row:
    available, create, upsert, read_duckdb, read_polars = CANDIDATES[candidate]
    row = Row(candidate)
    row.not_run = available()
    if row.not_run:
        return row
    bucket = f"bench-{candidate}"
    create_bucket(endpoint, bucket)
    url = f"s3://{bucket}/lake"
    create(url, endpoint)
    row.upsert_s = sum(_seconds(lambda b=b: upsert(url, endpoint, "ws", b)) for b in batches)
    row.reupsert_s = _seconds(lambda: upsert(url, endpoint, "ws", batches[0]))
    expected = {n: sum(b[n].num_rows for b in batches) for n in TABLES}
    for reader, field in ((read_duckdb, "duckdb_read_s"), (read_polars, "polars_read_s")):
        counts: dict[str, int] = {}
        setattr(row, field, _seconds(lambda r=reader, c=counts: c.update(r(url, endpoint))))
        assert counts == expected, (candidate, field, counts, expected)
    row.stored_bytes = stored_bytes(endpoint, bucket)
    pair_bucket = f"bench-{candidate}-pair"
    create_bucket(endpoint, pair_bucket)
    pair_url = f"s3://{pair_bucket}/lake"
    create(pair_url, endpoint)
    row.two_writers = two_writers(candidate, pair_url, endpoint, size)
    return row


def render(rows: list[Row], batches: int, size: int, api_bytes: int) -> str:
    catalog = "Postgres" if os.environ["LAKE_BENCH_CATALOG"].startswith("postgres:") else "file"
    lines = [
        f"{batches} batches of {size} conversations, API JSON {api_bytes / 1e6:.1f} MB; "
        f"DuckLake catalog: {catalog}; duckdb {duckdb.__version__}, polars {pl.__version__}; "
        "wall seconds on a shared "
        "2-core machine under load",
        f"{'format':<9} {'upsert all':>10} {'/batch':>7} {'re-upsert':>9} {'duckdb':>7} "
        f"{'polars':>7} {'stored MB':>9} {'vs JSON':>7}  two writers (other workspaces)",
    ]
    for r in rows:
        if r.not_run:
            lines.append(f"{r.name:<9} not run: {r.not_run}")
            continue
        lines.append(
            f"{r.name:<9} {r.upsert_s:>10.2f} {r.upsert_s / batches:>7.2f} {r.reupsert_s:>9.2f} "
            f"{r.duckdb_read_s:>7.2f} {r.polars_read_s:>7.2f} {r.stored_bytes / 1e6:>9.2f} "
            f"{r.stored_bytes / api_bytes:>7.2f}  {r.two_writers}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--only", choices=sorted(CANDIDATES), action="append")
    parser.add_argument(
        "--ducklake-postgres",
        metavar="CONNINFO",
        help="DuckLake's catalog in this Postgres database (libpq conninfo), not a DuckDB file",
    )
    parser.add_argument("--writer", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        candidate, url, endpoint, workspace, size = args.writer
        writer(candidate, url, endpoint, workspace, 2, int(size))
        return
    total = args.batches * args.batch_size
    fetched = [
        synthetic_bodies(SEED, first, args.batch_size, total)
        for first in range(0, total, args.batch_size)
    ]
    api_bytes = sum(len(orjson.dumps(c)) + len(h) + len(m) for b in fetched for c, h, m in b)
    batches = [export_batch(b, "bench") for b in fetched]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lake-bench-") as temp, s3_server() as endpoint:
        postgres = args.ducklake_postgres
        os.environ["LAKE_BENCH_CATALOG"] = f"postgres:{postgres}" if postgres else temp
        for candidate in args.only or CANDIDATES:
            rows.append(measure(candidate, endpoint, batches, args.batch_size))
    print(render(rows, args.batches, args.batch_size, api_bytes))


if __name__ == "__main__":
    main()

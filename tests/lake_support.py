"""Shared by the lake tests and bench/lake_bench.py: an S3 server on loopback (moto's), and real
export batches (emulator synthetic histories flattened by the export's own transform)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import orjson
import pyarrow as pa

from emulator.formats import DAY_US
from emulator.synthetic import synthetic_conversation, synthetic_history
from transform.bodies import flatten_bodies

if TYPE_CHECKING:
    from emulator.server import RunningEmulator

# A fixed end of the synthetic timeline, so every run builds the same batches.
END_US = 20_000 * DAY_US
MESSAGE_TYPES = frozenset(("message.input", "message.output"))
# Fake keys for the loopback server only: it accepts any.
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "lake-test", "AWS_SECRET_ACCESS_KEY": "lake-test"}


def require_lake_extra() -> None:
    """Skip without the ``lake`` extra (deltalake, moto); fail under CI, which must run these."""
    import pytest  # here: the bench imports this module without pytest installed

    try:
        import deltalake  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as error:
        reason = f"the lake extra is not installed ({error.name}): pip install -e '.[lake]'"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI must run the lake tests")
        pytest.skip(reason)


def s3_environment(endpoint: str) -> dict[str, str]:
    """What a process needs in its environment to use the loopback server, as a user would
    set it: fake credentials, a region, the endpoint over plain HTTP."""
    return {
        **FAKE_AWS,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }


@contextmanager
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (any free port) with fake credentials and its endpoint in
    the environment for the duration; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    environment = s3_environment(endpoint)
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        yield endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on the loopback S3 server."""
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)


def s3_options(endpoint: str) -> dict[str, str]:
    """delta-rs storage options for the loopback server: its endpoint over plain HTTP."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}


def synthetic_bodies(seed: int, first: int, count: int, total: int) -> list[tuple]:
    """(conversation, history body, messages body) of synthetic conversations first..+count,
    the bodies as the API sends them."""
    fetched = []
    for index in range(first, first + count):
        header = synthetic_conversation(seed, index, total, END_US)
        entries = synthetic_history(seed, index, header)
        history = {"object": "conversation.history", "conversation_id": header["id"]}
        messages = [e for e in entries if e["type"] in MESSAGE_TYPES]
        fetched.append(
            (
                header,
                orjson.dumps(history | {"entries": entries}),
                orjson.dumps({"object": "conversation.messages", "messages": messages}),
            )
        )
    return fetched


def export_batch(fetched: list[tuple], run_id: str) -> dict[str, pa.Table]:
    """The four export tables of fetched bodies, flattened as the export flow does."""
    tables, rejected = flatten_bodies(fetched, run_id)
    assert not rejected
    return tables


def assert_lake_equals_api(url: str, workspace: str, emu: RunningEmulator) -> None:
    """The workspace's live rows in the lake are the emulator's conversations, histories and
    messages, each exactly once (read as `convo-etl sql` reads the lake)."""
    from load.lake.reading import lake_connection

    store = emu.store
    connection = lake_connection(url)

    def grouped(query: str) -> dict[str, list]:
        found: dict[str, list] = {}
        for cid, raw in connection.execute(query, [workspace]).fetchall():
            found.setdefault(cid, []).append(orjson.loads(raw))
        return found

    live = grouped("SELECT id, raw FROM live_conversations WHERE workspace = ?")
    expected = {c["id"] for c in store.conversations_newest_first()}
    assert {cid: raws[0] for cid, raws in live.items()} == {
        cid: store.conversation(cid) for cid in expected
    }
    entries = grouped(
        "SELECT conversation_id, raw FROM live_entries WHERE workspace = ? "
        "ORDER BY conversation_id, position"
    )
    messages = grouped(
        "SELECT m.conversation_id, m.raw FROM messages AS m SEMI JOIN live_conversations AS c "
        "ON c.workspace = m.workspace AND c.id = m.conversation_id WHERE m.workspace = ? "
        "ORDER BY m.conversation_id, m.position"
    )
    for cid in expected:
        history = store.history(cid)
        assert entries.get(cid, []) == history
        assert messages.get(cid, []) == [e for e in history if e["type"] in MESSAGE_TYPES]

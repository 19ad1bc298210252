"""Shared by the lake tests and bench/lake_bench.py: an S3 server on loopback (moto's), and real
export batches (emulator synthetic histories flattened by the export's own transform)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pyarrow as pa

from emulator.formats import DAY_US
from emulator.synthetic import synthetic_conversation, synthetic_history
from transform.bodies import flatten_bodies

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


@contextmanager
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (any free port) with fake credentials in the environment
    for the duration; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = {name: os.environ.get(name) for name in [*FAKE_AWS, "AWS_REGION"]}
    os.environ.update(FAKE_AWS, AWS_REGION="us-east-1")
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
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

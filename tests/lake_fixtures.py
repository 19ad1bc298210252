"""Fixtures of the lake tests (a plugin they name in ``pytest_plugins``): a loopback S3 server
and a bucket per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lake_support import create_bucket, require_lake_extra, s3_server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One loopback S3 server for the module, or a skip (a failure under CI) without the extra."""
    require_lake_extra()
    with s3_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, request: pytest.FixtureRequest) -> str:
    """A new bucket named after the test."""
    name = request.node.name.replace("_", "-").replace("[", "-").lower()[:50].strip("-")
    create_bucket(endpoint, name)
    return name


@pytest.fixture
def lake_url(bucket: str) -> str:
    """A lake in a new bucket of its own."""
    return f"s3://{bucket}/lake"

"""The workspace lease on a real S3 server on loopback (moto's, which enforces If-None-Match and
If-Match): one holder at a time, renewals only by the holder, an expired lease taken over."""

from __future__ import annotations

import pytest

pytest_plugins = ("lake_fixtures",)


def test_one_holder_at_a_time_and_only_the_holder_renews(lake_url: str) -> None:
    from load.lake.lease import Lease
    from load.lake.reasons import LakeError, LeaseHeld

    first = Lease(lake_url, "ws", "run-1", seconds=60)
    first.take()
    with pytest.raises(LeaseHeld, match=r"^workspace ws is being exported by run run-1 on "):
        Lease(lake_url, "ws", "run-2", seconds=60).take()
    first.renew()
    first.renew()
    Lease(lake_url, "other-ws", "run-3", seconds=60).take()

    expired = Lease(lake_url, "ws", "run-1", seconds=-1)
    with pytest.raises(LeaseHeld):
        expired.take()
    first.release()
    expired.take()  # written with an expiry already past: anyone may take it over
    taker = Lease(lake_url, "ws", "run-4", seconds=60)
    taker.take()
    with pytest.raises(LakeError, match=r"^cannot renew the lease s3://.*PreconditionFailed"):
        expired.renew()
    expired.release()  # no longer its lease: left to its holder
    with pytest.raises(LeaseHeld, match="by run run-4 on "):
        Lease(lake_url, "ws", "run-5", seconds=60).take()

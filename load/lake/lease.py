"""One export at a time per workspace: a lease object in the lake, taken with a conditional put.

``<lake>/_leases/<workspace>.json`` holds the holder's run id, host and expiry. It is created
with If-None-Match: * (only one creator wins); an expired one is replaced with If-Match on its
ETag (only one taker wins); the holder renews it the same way and deletes it at the end. A
holder that dies stops renewing, and the lease expires. The lease saves duplicated work only:
the lake stays correct through Delta's own commits either way.

obstore (the object_store crate delta-rs itself uses) does the conditional puts, for s3://,
gs:// and az:// alike, reading the same AWS_* / GOOGLE_* / AZURE_* environment as delta-rs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import obstore
import orjson
from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError
from obstore.store import from_url

from load.lake.reasons import LakeError, LeaseHeld, short_reason

LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class Holder:
    """What a lease object says: who holds it, from where, until when."""

    run_id: str
    host: str
    expires_at: datetime

    def body(self) -> bytes:
        return orjson.dumps(
            {"run_id": self.run_id, "host": self.host, "expires_at": self.expires_at}
        )

    @classmethod
    def parsed(cls, body: bytes) -> Holder:
        fields = orjson.loads(body)
        expires = datetime.fromisoformat(fields["expires_at"])
        return cls(str(fields["run_id"]), str(fields["host"]), expires)


class Lease:
    """The lease of ``workspace`` in the lake at ``lake_url``, for run ``run_id``."""

    def __init__(self, lake_url: str, workspace: str, run_id: str, seconds: float) -> None:
        self.url = f"{lake_url.rstrip('/')}/_leases/{workspace}.json"
        self.workspace = workspace
        self.run_id = run_id
        self.seconds = seconds
        self._store = from_url(self.url.rsplit("/", 1)[0])
        self._key = f"{workspace}.json"
        self._etag: str | None = None

    def _holder(self) -> Holder:
        return Holder(
            self.run_id,
            socket.gethostname(),
            datetime.now(UTC) + timedelta(seconds=self.seconds),
        )

    def _failed(self, doing: str, error: BaseException) -> LakeError:
        return LakeError(f"cannot {doing} the lease {self.url}: {short_reason(error)}")

    def take(self) -> None:
        """Take the lease, or LeaseHeld when a live one is another run's."""
        try:
            self._etag = obstore.put(self._store, self._key, self._holder().body(), mode="create")[
                "e_tag"
            ]
            return
        except AlreadyExistsError:
            pass
        except (BaseError, OSError) as error:
            raise self._failed("take", error) from None
        try:
            current = obstore.get(self._store, self._key)
            holder = Holder.parsed(bytes(current.bytes()))
            if holder.expires_at > datetime.now(UTC):
                raise self._held(holder)
            self._etag = obstore.put(
                self._store, self._key, self._holder().body(), mode={"e_tag": current.meta["e_tag"]}
            )["e_tag"]
        except (PreconditionError, FileNotFoundError):
            raise self._held(None) from None
        except (BaseError, OSError, ValueError, KeyError) as error:
            raise self._failed("take", error) from None

    def _held(self, holder: Holder | None) -> LeaseHeld:
        if holder is None:
            return LeaseHeld(
                f"workspace {self.workspace} is being exported by another run that took its "
                f"lease {self.url} just now"
            )
        return LeaseHeld(
            f"workspace {self.workspace} is being exported by run {holder.run_id} on "
            f"{holder.host} until {holder.expires_at.isoformat(timespec='seconds')} "
            f"(its lease {self.url} expires then if that run died)"
        )

    def renew(self) -> None:
        """Move the expiry on; LakeError when the lease is no longer this run's."""
        try:
            self._etag = obstore.put(
                self._store, self._key, self._holder().body(), mode={"e_tag": self._etag}
            )["e_tag"]
        except (BaseError, OSError) as error:
            raise self._failed("renew", error) from None

    def release(self) -> None:
        """Delete the lease if it is still this run's."""
        try:
            current = obstore.get(self._store, self._key)
            if current.meta["e_tag"] == self._etag:
                obstore.delete(self._store, self._key)
        except FileNotFoundError:
            return
        except (BaseError, OSError) as error:
            raise self._failed("release", error) from None


@contextmanager
def leased(
    lake_url: str, workspace: str, run_id: str, seconds: float = LEASE_SECONDS
) -> Iterator[Lease]:
    """Hold the workspace's lease for the block, renewed every third of its term by a thread."""
    lease = Lease(lake_url, workspace, run_id, seconds)
    lease.take()
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(seconds / 3):
            try:
                lease.renew()
            except LakeError:
                continue  # the next renewal tries again; a lost lease costs duplicated work only

    keeper = threading.Thread(target=keep, name=f"lease-{workspace}", daemon=True)
    keeper.start()
    try:
        yield lease
    finally:
        stop.set()
        keeper.join()
        lease.release()

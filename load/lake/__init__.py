"""The export's tables as Delta Lake tables at a local path or an object-store URL (s3://...).

See docs/lake.md for why Delta Lake (delta-rs, the ``deltalake`` package) was chosen.
"""

from load.lake.schemas import LAKE_KEYS, LAKE_SCHEMAS, WORKSPACE
from load.lake.tables import Lake, LakeError, open_lake, read_updated_at, upsert_batch

__all__ = [
    "LAKE_KEYS",
    "LAKE_SCHEMAS",
    "WORKSPACE",
    "Lake",
    "LakeError",
    "open_lake",
    "read_updated_at",
    "upsert_batch",
]

"""The export's tables as Delta Lake tables at a local path or an object-store URL (s3://...).

See docs/lake.md for why Delta Lake (delta-rs, the ``deltalake`` package) was chosen. Nothing is
imported here: a local export reaches ``load.lake.location`` and ``load.lake.reasons`` without
loading deltalake and obstore (20 MB of its memory).
"""

"""Which data dirs are lakes: URLs with an object-store scheme, rather than local paths."""

# The schemes delta-rs (object_store) and obstore open: S3 (and S3-compatible stores), Google
# Cloud Storage, Azure Blob Storage / ADLS Gen2.
LAKE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss")


def is_lake_url(data_dir: str) -> bool:
    """Whether ``data_dir`` names an object-store location (``s3://bucket/prefix``...)."""
    scheme, separator, rest = data_dir.partition("://")
    return bool(separator and rest) and scheme.lower() in LAKE_SCHEMES

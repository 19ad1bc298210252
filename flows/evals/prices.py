"""Read the user's price table (costs from it are estimates), or none."""

from pathlib import Path

from transform.prices import PriceTable, parse_prices


def read_prices(path: str | Path | None) -> PriceTable | None:
    """The price table at `path` (PricesInvalid, OSError when it cannot be used), or None."""
    if path is None:
        return None
    source = Path(path)
    return parse_prices(source.read_bytes(), source.name)

"""A price table CSV (model, USD per million input and output tokens) and the cost it implies.

Costs from it are estimates: the table is the user's, and the API reports tokens, not money.
"""

import csv
import io
import math
from dataclasses import dataclass

import polars as pl

from transform.cells import shown

PRICE_COLUMNS = ("model", "input_per_million", "output_per_million")
PRICES_SCHEMA = {
    "model": pl.String,
    "input_per_million": pl.Float64,
    "output_per_million": pl.Float64,
}


class PricesInvalid(ValueError):
    """The price CSV failed validation; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class PriceTable:
    """Prices per model; `frame` has the columns of PRICES_SCHEMA, one row per model."""

    frame: pl.DataFrame

    @classmethod
    def empty(cls) -> "PriceTable":
        return cls(pl.DataFrame(schema=PRICES_SCHEMA))


def parse_prices(data: bytes, source: str) -> PriceTable:
    """Validate a whole price CSV, or raise PricesInvalid naming file, row and column."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records or not any(cell.strip() for cell in records[0]):
        expected = ", ".join(PRICE_COLUMNS)
        raise PricesInvalid([f"{source}: header: the file is empty (expected {expected})"])
    header = [cell.strip() for cell in records[0]]
    missing = [column for column in PRICE_COLUMNS if column not in header]
    if missing:
        raise PricesInvalid(
            [
                f"{source}: header, column {column}: the required column is missing"
                for column in missing
            ]
        )
    errors: list[str] = []
    rows: dict[str, tuple[float, float]] = {}
    seen: set[str] = set()
    for number, record in enumerate(records[1:], start=1):
        if not any(cell.strip() for cell in record):
            continue
        cells = dict(zip(header, [c.strip() for c in record], strict=False))
        model = cells.get("model", "")
        if not model:
            errors.append(f"{source}: row {number}, column model: the model is empty")
        elif model in seen:
            errors.append(f"{source}: row {number}, column model: {shown(model)} appears twice")
        seen.add(model)
        prices = [_price(cells.get(column, "")) for column in PRICE_COLUMNS[1:]]
        for column, price in zip(PRICE_COLUMNS[1:], prices, strict=True):
            if price is None:
                raw = shown(cells.get(column, ""))
                errors.append(f"{source}: row {number}, column {column}: {raw} is not a price >= 0")
        if model and None not in prices:
            rows[model] = (prices[0], prices[1])
    if errors:
        raise PricesInvalid(errors)
    return PriceTable(
        pl.DataFrame(
            {
                "model": list(rows),
                "input_per_million": [p[0] for p in rows.values()],
                "output_per_million": [p[1] for p in rows.values()],
            },
            schema=PRICES_SCHEMA,
        )
    )


def with_estimated_cost(results: pl.DataFrame, prices: PriceTable) -> pl.DataFrame:
    """Add `estimated_cost_usd` (null when the model has no price or tokens are unknown)."""
    priced = results.join(prices.frame, on="model", how="left", nulls_equal=False)
    cost = (
        pl.col("prompt_tokens") * pl.col("input_per_million")
        + pl.col("completion_tokens") * pl.col("output_per_million")
    ) / 1_000_000
    return priced.with_columns(estimated_cost_usd=cost).drop(
        "input_per_million", "output_per_million"
    )


def _price(raw: str) -> float | None:
    try:
        price = float(raw)
    except ValueError:
        return None
    return price if math.isfinite(price) and price >= 0 else None

"""Price tables: read per model, refused line by line, and the cost they imply (an estimate)."""

import polars as pl
import pytest

from transform.prices import PRICE_COLUMNS, PricesInvalid, parse_prices, with_estimated_cost


def test_prices_give_the_estimated_cost_of_each_result() -> None:
    prices = parse_prices(
        b"\xef\xbb\xbfmodel,output_per_million,input_per_million,notes\n"
        b"small,3,1,x\n\nlarge,6, 2,\n",
        "p.csv",
    )
    results = pl.DataFrame(
        {
            "model": ["large", "small", "other", "small"],
            "prompt_tokens": [1_000_000, 2000, 10, None],
            "completion_tokens": [500_000, 1000, 10, 10],
        }
    )
    costs = with_estimated_cost(results, prices)["estimated_cost_usd"].to_list()
    assert costs == pytest.approx([5.0, 0.005, None, None])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        (b"", [f"p.csv: header: the file is empty (expected {', '.join(PRICE_COLUMNS)})"]),
        (
            b"model,input\nm,1\n",
            [
                "p.csv: header, column input_per_million: the required column is missing",
                "p.csv: header, column output_per_million: the required column is missing",
            ],
        ),
        (
            b"model,input_per_million,output_per_million\nm,1,x\n,1,1\n\nm,-1,1\n",
            [
                "p.csv: row 1, column output_per_million: 'x' is not a price >= 0",
                "p.csv: row 2, column model: the model is empty",
                "p.csv: row 4, column model: 'm' appears twice",
                "p.csv: row 4, column input_per_million: '-1' is not a price >= 0",
            ],
        ),
    ],
)
def test_a_broken_price_table_is_refused_line_by_line(text: bytes, errors: list[str]) -> None:
    with pytest.raises(PricesInvalid) as caught:
        parse_prices(text, "p.csv")
    assert caught.value.errors == errors

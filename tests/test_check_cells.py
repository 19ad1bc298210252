"""A run keeps its checks as cells: every check type parses back to the same checks."""

import orjson
import pytest

from transform.check_cells import checks_from_cells, parse_checks_csv, row_checks_table
from transform.prompts import PromptSetInvalid

CSV = (
    b"id,prompt,__expected,__expected1,__expected2,__threshold,__description,__metadata:team\n"
    b'a,Hi,"contains-any: x, ""y, z""",levenshtein(3): hello,http://x.org,0.5,greets,docs\n'
    b'b,Ho,is-json: {"type": "object"},not-regex: ^no,latency: 250.5,,,\n'
    b"c,Hu,max-tokens: 10,llm-rubric: is polite,not-icontains: Sorry,,,\n"
    b"d,He,,,,,,\n"
)


def test_stored_cells_parse_back_to_the_same_checks() -> None:
    parsed = parse_checks_csv(CSV, "set.csv")
    table = row_checks_table("run", parsed)
    assert table.column("row_id").to_pylist() == ["a", "b", "c"]  # d has no check
    assert table.column("threshold").to_pylist() == [0.5, 1.0, 1.0]
    cells = dict(
        zip(table.column("row_id").to_pylist(), table.column("cells").to_pylist(), strict=True)
    )
    assert orjson.loads(cells["a"])["__expected2"] == "equals: http://x.org"
    assert checks_from_cells(cells.items()) == {k: v for k, v in parsed.items() if k != "d"}


def test_a_checks_csv_names_its_problems() -> None:
    with pytest.raises(PromptSetInvalid) as raised:
        parse_checks_csv(b"id,__expected\na,regex: (\na,x\n,y\n", "bad.csv")
    assert raised.value.errors[0].startswith("bad.csv: row 1, column __expected: regex '('")
    assert raised.value.errors[1:] == [
        "bad.csv: row 2, column id: duplicate id 'a'",
        "bad.csv: row 3, column id: the id is empty",
    ]
    with pytest.raises(PromptSetInvalid, match="the required column is missing"):
        parse_checks_csv(b"name,__expected\na,x\n", "noid.csv")
    with pytest.raises(PromptSetInvalid, match="no row has a check"):
        parse_checks_csv(b"id,prompt\na,x\n", "none.csv")

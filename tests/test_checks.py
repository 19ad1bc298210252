"""Check cells in a prompt CSV: read as promptfoo writes them, refused before anything is sent."""

import pytest

from transform.checks import Check, RowChecks
from transform.prompts import PromptSetInvalid, parse_prompts

KNOWN = (
    "equals, contains, icontains, starts-with, regex, contains-any, contains-all, latency, ttft, "
    "max-tokens, cost, is-json, levenshtein, llm-rubric"
)


def checks_of(*cells: str) -> tuple[Check, ...]:
    header = ",".join(["prompt", *(f"__expected{i + 1}" for i in range(len(cells)))])
    quoted = ",".join(['"' + cell.replace('"', '""') + '"' for cell in cells])
    (row,) = parse_prompts(f"{header}\nhi,{quoted}\n".encode(), "p.csv", default_model="m")
    return row.checks.checks


def errors_of(cell: str) -> list[str]:
    quoted = '"' + cell.replace('"', '""') + '"'
    with pytest.raises(PromptSetInvalid) as caught:
        parse_prompts(f"id,prompt,__expected\nq,hi,{quoted}\n".encode(), "p.csv", default_model="m")
    return caught.value.errors


def test_every_check_column_description_threshold_and_metadata_are_read() -> None:
    text = (
        "id,prompt,__expected,__expected1,__expected2,__description,__threshold,"
        "__metadata:topic,__metadata:owner,team\n"
        "q1,hi,Paris,not-contains: Lyon,,capital,0.5,geo,,eval\n"
    )
    (row,) = parse_prompts(text.encode(), "p.csv", default_model="m")
    assert row.checks == RowChecks(
        checks=(
            Check(0, "__expected", "equals", "Paris"),
            Check(1, "__expected1", "contains", "Lyon", negate=True),
        ),
        description="capital",
        threshold=0.5,
        metadata={"topic": "geo"},
    )
    assert row.extra == {"team": "eval"}
    assert row.description is None


def test_a_row_without_check_columns_has_no_checks() -> None:
    (row,) = parse_prompts(b"prompt\nhi\n", "p.csv", default_model="m")
    assert row.checks == RowChecks()


def test_each_type_is_parsed_with_its_value() -> None:
    assert checks_of(
        "icontains: PARIS",
        "starts-with:  The",
        r"regex: ^\d+$",
        'contains-any: a, "b, c" ,d',
        "not-contains-all: x,y",
        "is-json",
        'is-json: {"type": "object"}',
        "levenshtein(2): hello",
        "levenshtein: hello",
        "latency: 1500",
        "ttft: 200.5",
        "max-tokens: 64",
        "cost: 0.002",
        "llm-rubric: is polite: and brief",
        "not-is-json",
    ) == (
        Check(0, "__expected1", "icontains", "PARIS"),
        Check(1, "__expected2", "starts-with", "The"),
        Check(2, "__expected3", "regex", r"^\d+$"),
        Check(3, "__expected4", "contains-any", 'a, "b, c" ,d', items=("a", "b, c", "d")),
        Check(4, "__expected5", "contains-all", "x,y", negate=True, items=("x", "y")),
        Check(5, "__expected6", "is-json", ""),
        Check(6, "__expected7", "is-json", '{"type": "object"}'),
        Check(7, "__expected8", "levenshtein", "hello", number=2.0),
        Check(8, "__expected9", "levenshtein", "hello", number=5.0),
        Check(9, "__expected10", "latency", "1500", number=1500.0),
        Check(10, "__expected11", "ttft", "200.5", number=200.5),
        Check(11, "__expected12", "max-tokens", "64", number=64.0),
        Check(12, "__expected13", "cost", "0.002", number=0.002),
        Check(13, "__expected14", "llm-rubric", "is polite: and brief"),
        Check(14, "__expected15", "is-json", "", negate=True),
    )


def test_cells_without_a_type_compare_the_whole_cell() -> None:
    assert [(c.type, c.value) for c in checks_of("Paris", "http://x.org/a", "Note: yes")] == [
        ("equals", "Paris"),
        ("equals", "http://x.org/a"),
        ("equals", "Note: yes"),
    ]


def test_labels_keep_negation_and_the_levenshtein_distance() -> None:
    checks = checks_of("not-regex: a", "not-levenshtein(3): b", "equals: c")
    assert [c.label for c in checks] == ["not-regex", "not-levenshtein(3)", "equals"]


def test_empty_check_cells_are_no_check_and_indexes_stay_dense() -> None:
    checks = checks_of("", "contains: a", "  ", "contains: b")
    assert [(c.index, c.column) for c in checks] == [(0, "__expected2"), (1, "__expected4")]


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        (
            "contans: Paris",
            f"unknown check type 'contans' (known: {KNOWN}; "
            "write 'equals: ...' to compare the whole cell)",
        ),
        ("regex: (", "regex '(' does not compile: unclosed group"),
        (
            "regex: (?=a)b",
            "regex '(?=a)b' does not compile: look-around, including look-ahead and "
            "look-behind, is not supported",
        ),
        ("is-json: [1", "is-json: the schema '[1' is not valid JSON"),
        ("is-json: 3", "is-json: the schema '3' is not a JSON object"),
        (
            'is-json: {"type": 3}',
            "is-json: the schema is invalid: 3 is not valid under any of the given schemas",
        ),
        ("latency: fast", "latency: 'fast' is not a number >= 0"),
        ("not-ttft: -1", "not-ttft: '-1' is not a number >= 0"),
        ("max-tokens: 1.5", "max-tokens: '1.5' is not a whole number >= 0"),
        ("cost: nan", "cost: 'nan' is not a number >= 0"),
        ("levenshtein(x): a", "levenshtein(x): the distance is not a whole number >= 0"),
        ("contains:", "contains needs a value"),
        ("contains(3): x", "contains takes no '(3)'"),
        ("contains-any: , ,", "contains-any needs comma-separated values"),
        ("llm-rubric:  ", "llm-rubric needs a value"),
    ],
)
def test_each_broken_check_is_one_line_naming_file_row_and_column(cell: str, problem: str) -> None:
    assert errors_of(cell) == [f"p.csv: row 1, column __expected: {problem}"]


@pytest.mark.parametrize("threshold", ["1.5", "-0.1", "most", "nan"])
def test_a_threshold_outside_zero_to_one_is_refused(threshold: str) -> None:
    with pytest.raises(PromptSetInvalid) as caught:
        parse_prompts(f"prompt,__threshold\nhi,{threshold}\n".encode(), "p.csv", default_model="m")
    assert caught.value.errors == [
        f"p.csv: row 1, column __threshold: '{threshold}' is not a number between 0 and 1"
    ]


def test_check_problems_join_the_other_problems_of_the_file() -> None:
    text = "prompt,temperature,__expected,__expected1\nhi,hot,regex: [,ok\n,,latency: x,\n"
    with pytest.raises(PromptSetInvalid) as caught:
        parse_prompts(text.encode(), "p.csv", default_model="m")
    assert caught.value.errors == [
        "p.csv: row 1, column temperature: 'hot' is not a number",
        "p.csv: row 1, column __expected: regex '[' does not compile: unclosed character class",
        "p.csv: row 2, column prompt: the prompt is empty",
        "p.csv: row 2, column __expected: latency: 'x' is not a number >= 0",
    ]

"""Prompt CSV parsing: every column read as documented, every broken file named exactly."""

from pathlib import Path

import pytest

from transform.prompts import (
    PromptRow,
    PromptSetInvalid,
    group_sequences,
    parse_prompts,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "prompts"


def errors_of(text: str | bytes, **defaults: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(PromptSetInvalid) as caught:
        parse_prompts(data, "prompts.csv", **defaults)
    return caught.value.errors


def test_every_column_is_read_into_the_row() -> None:
    text = (
        "id,prompt,model,instructions,name,description,metadata,temperature,top_p,"
        "max_tokens,random_seed,team,notes\n"
        'q1,"Hello, ""world""",mistral-small-latest,Be brief.,n,d,"{""k"": [1]}",0.5,0.9,'
        "64,7,eval,\n"
    )
    (row,) = parse_prompts(text.encode(), "prompts.csv")
    assert row == PromptRow(
        row_number=1,
        row_id="q1",
        prompt='Hello, "world"',
        model="mistral-small-latest",
        instructions="Be brief.",
        name="n",
        description="d",
        metadata={"k": [1]},
        completion_args={"temperature": 0.5, "top_p": 0.9, "max_tokens": 64, "random_seed": 7},
        extra={"team": "eval", "notes": ""},
    )


def test_defaults_ids_bom_multiline_prompts_and_blank_lines() -> None:
    text = '\ufeffprompt\nfirst\n\n"two\nlines"\n'
    rows = parse_prompts(text.encode(), "p.csv", default_model="m")
    assert [(r.row_number, r.row_id, r.prompt, r.model) for r in rows] == [
        (1, "1", "first", "m"),
        (3, "3", "two\nlines", "m"),
    ]


def test_a_row_agent_wins_over_the_default_model() -> None:
    text = "prompt,agent_id\nhi,ag_1\nho,\n"
    rows = parse_prompts(text.encode(), "p.csv", default_model="m")
    assert [(r.model, r.agent_id) for r in rows] == [(None, "ag_1"), ("m", None)]


def test_threads_group_in_file_order_and_later_turns_need_no_model() -> None:
    text = "id,thread,prompt,model\na,x,1,m\nb,y,2,m\nc,x,3,\nd,,4,m\ne,x,5,\n"
    sequences = group_sequences(parse_prompts(text.encode(), "p.csv"))
    assert [(s.thread, [r.row_id for r in s.rows]) for s in sequences] == [
        ("x", ["a", "c", "e"]),
        ("y", ["b"]),
        (None, ["d"]),
    ]


def test_append_and_restart_rows_need_no_model() -> None:
    text = "prompt,conversation_id,from_entry_id,metadata\na,conv_1,,\nb,conv_1,msg_2,{}\n"
    rows = parse_prompts(text.encode(), "p.csv")
    assert [(r.conversation_id, r.from_entry_id, r.metadata) for r in rows] == [
        ("conv_1", None, None),
        ("conv_1", "msg_2", {}),
    ]


def test_the_example_prompt_sets_are_valid() -> None:
    counts = {
        path.name: len(parse_prompts(path.read_bytes(), path.name))
        for path in sorted(EXAMPLES.glob("*.csv"))
    }
    assert counts == {
        "agent.csv": 2,
        "basic.csv": 3,
        "branches.csv": 2,
        "checks.csv": 5,
        "threads.csv": 5,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id,model\n1,m\n", "prompts.csv: header, column prompt: the required column is missing"),
        ("prompt,model\nfine,m\n   ,m\n", "prompts.csv: row 2, column prompt: the prompt is empty"),
        (
            "prompt,model,temperature\na,m,0.1\nb,m,\nc,m,1\nd,m,hot\n",
            "prompts.csv: row 4, column temperature: 'hot' is not a number",
        ),
        (
            "prompt,model,top_p\na,m,nan\n",
            "prompts.csv: row 1, column top_p: 'nan' is not a number",
        ),
        (
            "prompt,model,max_tokens\na,m,1.5\n",
            "prompts.csv: row 1, column max_tokens: '1.5' is not a whole number",
        ),
        (
            "prompt,model,random_seed\na,m,seven\n",
            "prompts.csv: row 1, column random_seed: 'seven' is not a whole number",
        ),
        (
            "prompt,from_entry_id,model\na,msg_1,m\n",
            "prompts.csv: row 1, column from_entry_id: "
            "from_entry_id needs a conversation_id on the same row",
        ),
        (
            "id,prompt,model\na1,x,m\nb,y,m\na1,z,m\n",
            "prompts.csv: row 3, column id: duplicate id 'a1' (first on row 1)",
        ),
        (
            "id,prompt,model\n,x,m\n1,y,m\n",
            "prompts.csv: row 2, column id: duplicate id '1' (first on row 1)",
        ),
        (
            "prompt\nhello\n",
            "prompts.csv: row 1, column model: a row that starts a conversation needs model or "
            "agent_id (or --model / --agent-id)",
        ),
        (
            "prompt,model,agent_id\nhello,m,ag_1\n",
            "prompts.csv: row 1, column agent_id: a row takes model or agent_id, not both",
        ),
        (
            "prompt,model,metadata\nhello,m,[1]\n",
            "prompts.csv: row 1, column metadata: '[1]' is not a JSON object",
        ),
        (
            "prompt,model,metadata\nhello,m,{oops\n",
            "prompts.csv: row 1, column metadata: '{oops' is not valid JSON",
        ),
        (
            "prompt,thread,model,conversation_id\na,t,m,\nb,t,,conv_1\n",
            "prompts.csv: row 2, column conversation_id: "
            "only the first row of thread 't' can name a conversation",
        ),
        (
            "prompt,thread,model,instructions\na,t,m,\nb,t,,Be nice.\n",
            "prompts.csv: row 2, column instructions: "
            "only a row that starts a conversation can set instructions",
        ),
        (
            "prompt,conversation_id,metadata\nb,conv_1,{}\n",
            "prompts.csv: row 1, column metadata: "
            "only a row that starts or restarts a conversation can set it",
        ),
        ("prompt,model\na,m,extra\n", "prompts.csv: row 1: has 3 fields, the header has 2"),
        ("prompt,prompt\na,b\n", "prompts.csv: header, column prompt: the column appears twice"),
        ("prompt,,model\na,,m\n", "prompts.csv: header, column 2: the column has no name"),
        ("", "prompts.csv: header: the file is empty (expected a header row)"),
        ("prompt,model\n", "prompts.csv: the file has a header but no rows"),
    ],
)
def test_each_broken_file_gets_one_exact_message(text: str, expected: str) -> None:
    assert errors_of(text) == [expected]


def test_bytes_that_are_not_utf8_are_named_by_row_and_column() -> None:
    data = b"prompt,model\nfine,m\ncaf\xe9,m\n"
    assert errors_of(data) == ["prompts.csv: row 2, column prompt: bytes are not valid UTF-8"]
    assert errors_of(b"pr\xffompt,model\na,m\n") == [
        "prompts.csv: header, column 1: bytes are not valid UTF-8",
        "prompts.csv: header, column prompt: the required column is missing",
    ]


def test_all_problems_are_listed_up_to_twenty() -> None:
    text = "prompt,model,temperature\n" + "".join(f"p{n},m,x{n}\n" for n in range(1, 26))
    errors = errors_of(text)
    assert len(errors) == 21
    assert errors[0] == "prompts.csv: row 1, column temperature: 'x1' is not a number"
    assert errors[19] == "prompts.csv: row 20, column temperature: 'x20' is not a number"
    assert errors[20] == "... and 5 more problems"


def test_several_problems_on_one_row_are_all_named() -> None:
    assert errors_of("prompt,temperature,from_entry_id\n,warm,msg_1\n") == [
        "prompts.csv: row 1, column prompt: the prompt is empty",
        "prompts.csv: row 1, column from_entry_id: "
        "from_entry_id needs a conversation_id on the same row",
        "prompts.csv: row 1, column model: a row that starts a conversation needs model or "
        "agent_id (or --model / --agent-id)",
        "prompts.csv: row 1, column temperature: 'warm' is not a number",
    ]


def test_a_prompt_longer_than_the_csv_modules_default_limit_is_read() -> None:
    prompt = "x" * 300_000
    rows = parse_prompts(f'prompt,model\n"{prompt}",m\n'.encode(), "long.csv")
    assert rows[0].prompt == prompt


@pytest.mark.parametrize(
    ("column", "cell", "problem"),
    [
        ("temperature", "1.5", "'1.5' is outside the API's range 0 to 1"),
        ("temperature", "-0.1", "'-0.1' is outside the API's range 0 to 1"),
        ("top_p", "1.01", "'1.01' is outside the API's range 0 to 1"),
        ("max_tokens", "-1", "'-1' is outside the API's range 0 to 9223372036854775807"),
        ("random_seed", "-5", "'-5' is outside the API's range 0 to 9223372036854775807"),
        (
            "random_seed",
            "99999999999999999999",
            "'99999999999999999999' is outside the API's range 0 to 9223372036854775807",
        ),
    ],
)
def test_completion_args_outside_the_specs_range_are_named(
    column: str, cell: str, problem: str
) -> None:
    text = f"prompt,model,{column}\nfine,m,\nbad,m,{cell}\n"
    assert errors_of(text) == [f"prompts.csv: row 2, column {column}: {problem}"]


def test_completion_args_at_the_edges_of_the_range_are_kept() -> None:
    text = "prompt,model,temperature,top_p,max_tokens,random_seed\na,m,0,1,0,9223372036854775807\n"
    assert parse_prompts(text.encode(), "p.csv")[0].completion_args == {
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 0,
        "random_seed": 2**63 - 1,
    }

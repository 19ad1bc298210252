"""The request columns of a prompt CSV: parsed as documented, every bad cell named exactly."""

import pytest

from transform.prompts import PromptSetInvalid, parse_prompts
from transform.request_columns import RequestColumns

HEADER = (
    "id,prompt,inputs,model,agent_version,tools,completion_args,temperature,store,"
    "handoff_execution,guardrails,function_results,conversation_id,from_entry_id\n"
)


def errors_of(text: str) -> list[str]:
    with pytest.raises(PromptSetInvalid) as caught:
        parse_prompts(text.encode(), "p.csv")
    return caught.value.errors


def test_request_columns_are_parsed_into_the_row() -> None:
    text = HEADER + (
        'a,Hi,,m,2,"[{""type"": ""web_search""}]","{""stop"": [""x""]}",0.5,no,server,'
        '"[{""block_on_error"": true}]","{""f"": 1}",,\n'
        ',,"[{""role"": ""user"", ""content"": ""Yo""}]",m,v7,,,,TRUE,,,,,\n'
    )
    first, second = parse_prompts(text.encode(), "p.csv")
    assert first.request == RequestColumns(
        tools=[{"type": "web_search"}],
        completion_args={"stop": ["x"]},
        agent_version=2,
        store=False,
        handoff_execution="server",
        guardrails=[{"block_on_error": True}],
        function_results={"f": 1},
    )
    assert first.completion_args == {"stop": ["x"], "temperature": 0.5}
    assert second.request.inputs == [{"role": "user", "content": "Yo"}]
    assert (second.request.agent_version, second.request.store) == ("v7", True)
    assert second.prompt == '[{"role":"user","content":"Yo"}]'


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("a,Hi,,m,,[,,,,,,,,", "p.csv: row 1, column tools: '[' is not valid JSON"),
        ("a,Hi,,m,,{},,,,,,,,", "p.csv: row 1, column tools: '{}' is not a JSON list"),
        (
            "a,Hi,,m,,,[1],,,,,,,",
            "p.csv: row 1, column completion_args: '[1]' is not a JSON object",
        ),
        (
            'a,Hi,,m,,,"{""temperature"": 1}",0.5,,,,,,',
            "p.csv: row 1, column temperature: temperature is also set in completion_args: "
            "set it in one place",
        ),
        ("a,Hi,,m,,,,,maybe,,,,,", "p.csv: row 1, column store: 'maybe' is not true or false"),
        (
            "a,Hi,,m,,,,,,local,,,,",
            "p.csv: row 1, column handoff_execution: 'local' is not one of client, server",
        ),
        ("a,Hi,,m,,,,,,,1,,,", "p.csv: row 1, column guardrails: '1' is not a JSON list"),
        (
            "a,Hi,,m,,,,,,,,[],,",
            "p.csv: row 1, column function_results: '[]' is not a JSON object",
        ),
        ("a,,[],m,,,,,,,,,,", "p.csv: row 1, column inputs: the list of entries is empty"),
        (
            "a,,[1],m,,,,,,,,,,",
            "p.csv: row 1, column inputs: entry 1 is not a JSON object with a type",
        ),
        (
            'a,,"[{""type"": ""message.input""}]",m,,,,,,,,,,',
            "p.csv: row 1, column inputs: entry 1 (message.input) has no content",
        ),
        (
            'a,Hi,"[{""content"": ""x""}]",m,,,,,,,,,,',
            "p.csv: row 1, column inputs: a row takes prompt or inputs, not both",
        ),
        (
            'a,Hi,,,,"[]",,,,,,,conv_1,',
            "p.csv: row 1, column tools: only a row that starts a conversation can set tools",
        ),
        (
            "a,Hi,,,3,,,,,,,,conv_1,",
            "p.csv: row 1, column agent_version: only a row that starts or restarts a "
            "conversation can set agent_version",
        ),
    ],
)
def test_each_bad_request_cell_gets_one_exact_line(row: str, expected: str) -> None:
    assert errors_of(HEADER + row + "\n") == [expected]


def test_a_restart_row_can_set_agent_version_and_guardrails() -> None:
    (row,) = parse_prompts((HEADER + "a,Hi,,,3,,,,,,[],,conv_1,msg_1\n").encode(), "p.csv")
    assert (row.request.agent_version, row.request.guardrails) == (3, [])


def test_a_file_with_inputs_and_no_prompt_column_is_valid() -> None:
    (row,) = parse_prompts(b'inputs,model\n"[{""content"": ""x""}]",m\n', "p.csv")
    assert row.request.inputs == [{"content": "x"}]

"""llm-rubric's pure half: the judge's request, reading its answer, and landing its verdicts."""

from datetime import UTC, datetime

import polars as pl
import pytest

from transform.grading import checks_frame, grade
from transform.judge import (
    JUDGE_INSTRUCTIONS,
    JudgeVerdict,
    apply_judgements,
    judge_cache_key,
    judge_request,
    judgements_frame,
    parse_judge_answer,
    pending_judgements,
)
from transform.prompts import parse_prompts

GRADED_AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
JUDGED_AT = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)


def test_the_request_is_an_unstored_conversation_start_with_the_judge_model() -> None:
    body = judge_request("mistral-large-latest", "Is it polite?", "Go away.")
    assert body == {
        "model": "mistral-large-latest",
        "inputs": "<rubric>\nIs it polite?\n</rubric>\n<output>\nGo away.\n</output>",
        "instructions": JUDGE_INSTRUCTIONS,
        "store": False,
        "completion_args": {"temperature": 0.0, "response_format": {"type": "json_object"}},
    }
    assert '{"pass": true or false, "score": a number from 0 to 1' in JUDGE_INSTRUCTIONS


def test_the_cache_key_changes_with_model_rubric_and_output_only() -> None:
    key = judge_cache_key("judge", "rubric", "output")
    assert key == judge_cache_key("judge", "rubric", "output")
    assert len(key) == 64
    others = {
        judge_cache_key("judge2", "rubric", "output"),
        judge_cache_key("judge", "rubric2", "output"),
        judge_cache_key("judge", "rubric", "output2"),
        judge_cache_key("judgerubric", "", "output"),
    }
    assert key not in others
    assert len(others) == 4


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ('{"pass": true, "score": 0.9, "reason": "polite"}', JudgeVerdict(True, 0.9, "polite")),
        (
            '```json\n{"pass": false, "score": 0, "reason": "rude"}\n```',
            JudgeVerdict(False, 0.0, "rude"),
        ),
        ('Here:\n```\n{"pass": true, "score": 1}\n```\nDone.', JudgeVerdict(True, 1.0, "")),
        ('  {"pass": false}  ', JudgeVerdict(False, 0.0, "")),
        ('{"pass": true}', JudgeVerdict(True, 1.0, "")),
        (
            "I think it passes.",
            JudgeVerdict(False, 0.0, "the judge's answer is not JSON: 'I think it passes.'"),
        ),
        (
            '["pass"]',
            JudgeVerdict(False, 0.0, "the judge's answer is not a JSON object: '[\"pass\"]'"),
        ),
        (
            '{"pass": "yes"}',
            JudgeVerdict(
                False, 0.0, "the judge's answer has no true/false 'pass': '{\"pass\": \"yes\"}'"
            ),
        ),
        (
            '{"pass": true, "score": 7}',
            JudgeVerdict(
                False,
                0.0,
                "the judge's answer has a 'score' that is not a number from 0 to 1: "
                '\'{"pass": true, "score": 7}\'',
            ),
        ),
        ("", JudgeVerdict(False, 0.0, "the judge's answer is not JSON: ''")),
    ],
)
def test_the_answer_is_read_or_becomes_a_failing_verdict(
    answer: str, verdict: JudgeVerdict
) -> None:
    assert parse_judge_answer(answer) == verdict


def test_pending_rubrics_are_listed_with_their_outputs_and_filled_by_the_judge() -> None:
    text = (
        "id,prompt,__expected,__expected1\n"
        "q1,hi,contains: a,llm-rubric: is polite\n"
        "q2,hi,not-llm-rubric: is rude,\n"
    )
    checks = {r.row_id: r.checks for r in parse_prompts(text.encode(), "p.csv", default_model="m")}
    results = pl.DataFrame(
        {
            "run_id": ["r", "r"],
            "row_id": ["q1", "q2"],
            "repeat_index": [0, 0],
            "status": ["ok", "ok"],
            "error": [None, None],
            "output_text": ["a, please", "no"],
        }
    )
    verdicts = grade(results, checks_frame(checks), GRADED_AT)
    waiting = pending_judgements(verdicts, results).sort("row_id")
    assert list(waiting.iter_rows()) == [
        ("r", "q1", 0, "", 1, "is polite", "a, please"),
        ("r", "q2", 0, "", 0, "is rude", "no"),
    ]
    judged = judgements_frame(
        [
            (("r", "q1", 0, "", 1), JudgeVerdict(True, 0.8, "says please")),
            (("r", "q2", 0, "", 0), JudgeVerdict(True, 0.75, "curt")),
        ]
    )
    filled = apply_judgements(verdicts, judged, JUDGED_AT).sort("row_id", "check_index")
    assert list(
        filled.select("row_id", "type", "pass", "score", "reason", "graded_at").iter_rows()
    ) == [
        ("q1", "contains", True, 1.0, None, GRADED_AT),
        ("q1", "llm-rubric", True, 0.8, "says please", JUDGED_AT),
        ("q2", "not-llm-rubric", False, 0.25, "curt", JUDGED_AT),
    ]
    assert pending_judgements(filled, results).height == 0

"""Ask the judge model about the llm-rubric checks still waiting, through the Conversations API.

Each distinct (judge model, rubric, output) is asked once, unstored (`store: false`), and its
verdict cached in `judge_cache`: grading again finds it there and sends nothing.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import pyarrow as pa

from extract.client import ConversationsClient
from extract.errors import ApiError
from transform.check_schemas import JUDGE_CACHE
from transform.grading import VERDICT_KEYS
from transform.judge import (
    JudgementKey,
    JudgeVerdict,
    judge_cache_key,
    judge_request,
    parse_judge_answer,
)
from transform.replay_outputs import response_output


@dataclass(frozen=True)
class Judged:
    """The verdicts found for the pending checks, and what it took: requests, cache hits, errors."""

    verdicts: list[tuple[JudgementKey, JudgeVerdict]]
    new_cache_rows: pa.Table
    requests: int
    cached: int
    errors: list[str]


def with_cache_keys(pending: pl.DataFrame, judge_model: str) -> pl.DataFrame:
    """`pending_judgements(...)` lines with the judge cache key of each."""
    keys = [
        judge_cache_key(judge_model, rubric, output or "")
        for rubric, output in pending.select("rubric", "output_text").iter_rows()
    ]
    return pending.with_columns(cache_key=pl.Series(keys, dtype=pl.String))


async def judge_pending(
    keyed: pl.DataFrame,
    judge_model: str,
    cached: dict[str, tuple[bool, float, str]],
    client: ConversationsClient | None,
    judged_at: datetime,
) -> Judged:
    """Verdicts for `with_cache_keys(...)` lines: from the cache, else from the judge.

    Without a client only the cache answers; a judge request that fails leaves its checks
    pending and is reported in `errors`.
    """
    asks = {
        key: (rubric, output or "")
        for key, rubric, output in keyed.select("cache_key", "rubric", "output_text").iter_rows()
        if key not in cached
    }
    answers: dict[str, JudgeVerdict] = {
        key: JudgeVerdict(*verdict) for key, verdict in cached.items()
    }
    errors: list[str] = []
    new_rows: list[dict[str, object]] = []
    if client is not None and asks:
        replies = await asyncio.gather(
            *(_ask(client, judge_model, rubric, output) for rubric, output in asks.values())
        )
        for key, reply in zip(asks, replies, strict=True):
            if isinstance(reply, str):
                errors.append(reply)
                continue
            answers[key] = reply
            new_rows.append(
                {
                    "cache_key": key,
                    "judge_model": judge_model,
                    "pass": reply.passed,
                    "score": reply.score,
                    "reason": reply.reason,
                    "judged_at": judged_at,
                }
            )
    verdicts = [
        (tuple(line[name] for name in VERDICT_KEYS), answers[line["cache_key"]])
        for line in keyed.iter_rows(named=True)
        if line["cache_key"] in answers
    ]
    return Judged(
        verdicts=verdicts,  # type: ignore[arg-type]
        new_cache_rows=pa.Table.from_pylist(new_rows, schema=JUDGE_CACHE),
        requests=len(asks) if client is not None else 0,
        cached=sum(1 for key in keyed["cache_key"].unique() if key in cached),
        errors=errors,
    )


async def _ask(
    client: ConversationsClient, judge_model: str, rubric: str, output: str
) -> JudgeVerdict | str:
    """The judge's verdict, or the one line saying why there is none."""
    try:
        response = await client.start_conversation(judge_request(judge_model, rubric, output))
    except ApiError as exc:
        return f"judge {judge_model}: {exc}"
    return parse_judge_answer(response_output(response).text)

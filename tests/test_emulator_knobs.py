"""The emulator's misbehaviour knobs: latency, token delay, rate limit, faults, cut streams."""

import asyncio
import time
from collections import Counter

import httpx

from emulator.replies import reply_text

HEADERS = {"Authorization": "Bearer test-token"}


def test_latency_is_added_to_each_request_without_blocking_others(make_emulator):
    emu = make_emulator(conversations=3, latency_ms=150)

    async def eight_at_once() -> list[float]:
        async with httpx.AsyncClient(base_url=emu.url, headers=HEADERS) as client:

            async def timed() -> float:
                started = time.perf_counter()
                assert (await client.get("/v1/conversations")).status_code == 200
                return time.perf_counter() - started

            return await asyncio.gather(*(timed() for _ in range(8)))

    started = time.perf_counter()
    durations = asyncio.run(eight_at_once())
    assert min(durations) >= 0.15
    assert time.perf_counter() - started < 8 * 0.15 / 2


def test_token_delay_paces_streams_and_non_streamed_answers(make_emulator):
    emu = make_emulator(conversations=1, token_delay_ms=20)
    body = {"inputs": "pace me please", "model": "m"}
    with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
        arrivals = []
        started = time.perf_counter()
        with client.stream("POST", "/v1/conversations", json=body | {"stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("event:"):
                    arrivals.append(time.perf_counter() - started)
        started = time.perf_counter()
        plain = client.post("/v1/conversations", json=body)
        plain_duration = time.perf_counter() - started
    events = len(arrivals)
    assert events >= 8
    assert arrivals[-1] - arrivals[0] >= (events - 1) * 0.02 * 0.9
    assert plain_duration >= (events - 1) * 0.02 * 0.9
    assert plain.json()["outputs"][0]["content"] == reply_text("pace me please")


def test_over_the_rps_limit_answers_429_with_retry_after(make_emulator):
    emu = make_emulator(conversations=2, rps=4)
    with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
        answers = [client.get("/v1/conversations") for _ in range(10)]
        limited = [answer for answer in answers if answer.status_code == 429]
        assert [answer.status_code for answer in answers[:4]] == [200] * 4
        assert len(limited) >= 3
        assert limited[0].json() == {"message": "Requests rate limit exceeded"}
        assert int(limited[0].headers["retry-after"]) >= 1
        time.sleep(0.6)
        assert client.get("/v1/conversations").status_code == 200
        emu.config.rps = None
        assert all(client.get("/v1/conversations").status_code == 200 for _ in range(10))
    assert emu.store.request_counts["list"] == len(answers) - len(limited) + 11
    assert emu.store.rejected_counts[429] == len(limited)


def test_faults_hit_that_fraction_before_any_side_effect(make_emulator):
    emu = make_emulator(conversations=2, fault_rate=0.5, seed=3)
    with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
        answers = [
            client.post("/v1/conversations", json={"inputs": "x", "model": "m"}) for _ in range(80)
        ]
        statuses = Counter(answer.status_code for answer in answers)
        emu.config.fault_rate = 0.0
        calm = {client.get("/v1/conversations").status_code for _ in range(20)}
    assert set(statuses) == {200, 429, 500, 502, 503}
    assert 20 <= sum(count for status, count in statuses.items() if status != 200) <= 60
    assert len(emu.store) == 2 + statuses[200]
    assert emu.store.request_counts["start"] == statuses[200]
    assert sum(emu.store.rejected_counts.values()) == 80 - statuses[200]
    assert calm == {200}
    bad_gateway = next(answer for answer in answers if answer.status_code == 502)
    assert bad_gateway.headers["content-type"].startswith("text/html")


def test_a_cut_stream_ends_without_done_yet_the_turn_is_stored(make_emulator):
    emu = make_emulator(conversations=2, stream_cut_rate=1.0)
    cid = emu.store.conversations_newest_first()[0]["id"]
    with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
        cut = client.post(f"/v1/conversations/{cid}", json={"inputs": "cut me off", "stream": True})
        history = client.get(f"/v1/conversations/{cid}/history").json()["entries"]
        emu.config.stream_cut_rate = 0.0
        whole = client.post(
            f"/v1/conversations/{cid}", json={"inputs": "cut me off", "stream": True}
        )
    assert cut.status_code == 200
    assert cut.text.startswith("event: conversation.response.started\n")
    assert cut.text.endswith("\n\n")
    assert "conversation.response.done" not in cut.text
    assert history[-1]["type"] == "message.output"
    assert reply_text("cut me off") in str(history[-1]["content"])
    assert whole.text.rstrip().split("\n")[-2] == "event: conversation.response.done"

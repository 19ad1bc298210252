"""The emulator's knobs: latency, token delay, rate limit, faults, cut streams, failed turns."""

import asyncio
import time
from collections import Counter

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from test_emulator_schemas import LATEST, OLDER, assert_valid, sse_events

from emulator.config import EmulatorConfig
from emulator.events import DELTAS_BEFORE_ERROR
from emulator.replies import reply_pieces, reply_text
from emulator.server import command_line, spawn_emulator

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


def test_a_failing_stream_ends_with_an_error_event_and_keeps_only_the_inputs(make_emulator):
    # Without thinking chunks: the older spec has none, and the deltas are all reply text.
    emu = make_emulator(conversations=2, stream_error_rate=1.0, thinking_chunks=False)
    existing = emu.store.conversations_newest_first()[0]["id"]
    history_before = emu.store.history(existing)
    with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
        started = client.post(
            "/v1/conversations", json={"inputs": "fail me", "model": "m", "stream": True}
        )
        appended = client.post(
            f"/v1/conversations/{existing}", json={"inputs": "fail me too", "stream": True}
        )
        emu.config.stream_error_rate = 0.0
        whole = client.post(
            f"/v1/conversations/{existing}", json={"inputs": "fine", "stream": True}
        )
    for answer, prompt in ((started, "fail me"), (appended, "fail me too")):
        assert answer.status_code == 200
        events = sse_events(answer.text)
        for name, data in events:
            assert_valid(LATEST, "ConversationEvents", {"event": name, "data": data})
            assert_valid(OLDER, "ConversationEvents", {"event": name, "data": data})
        names = [name for name, _ in events]
        assert names == [
            "conversation.response.started",
            *["message.output.delta"] * DELTAS_BEFORE_ERROR,
            "conversation.response.error",
        ]
        deltas = "".join(data["content"] for name, data in events[1:-1])
        assert deltas == "".join(reply_pieces(reply_text(prompt))[:DELTAS_BEFORE_ERROR])
        error = events[-1][1]
        assert (error["message"], error["code"]) == ("Internal server error", 3000)
        assert error["created_at"].endswith("Z")
    new_conversation = sse_events(started.text)[0][1]["conversation_id"]
    assert [(e["type"], e["content"]) for e in emu.store.history(new_conversation)] == [
        ("message.input", "fail me")
    ]
    history = emu.store.history(existing)
    assert history[: len(history_before)] == history_before
    added = [(e["type"], e.get("content")) for e in history[len(history_before) :]]
    assert added[0] == ("message.input", "fail me too")
    assert added[1:3] == [("message.input", "fine"), ("message.output", reply_text("fine"))]
    assert whole.text.rstrip().split("\n")[-2] == "event: conversation.response.done"


def test_a_failing_plain_turn_is_a_500_with_no_side_effect(make_emulator):
    emu = make_emulator(conversations=2, stream_error_rate=1.0)
    existing = emu.store.conversations_newest_first()[0]["id"]
    history_before = emu.store.history(existing)
    first_entry = history_before[0]["id"]
    with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
        answers = [
            client.post("/v1/conversations", json={"inputs": "x", "model": "m"}),
            client.post(f"/v1/conversations/{existing}", json={"inputs": "x"}),
            client.post(
                f"/v1/conversations/{existing}/restart",
                json={"inputs": "x", "from_entry_id": first_entry},
            ),
        ]
        invalid = client.post("/v1/conversations", json={"model": "m"})
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json() == {
            "object": "Error",
            "message": "Internal server error",
            "type": "internal_server_error",
            "param": None,
            "code": 3000,
        }
    assert invalid.status_code == 422
    assert len(emu.store) == 2
    assert emu.store.history(existing) == history_before
    assert emu.store.request_counts == {"start": 2, "append": 1, "restart": 1}


def test_stream_errors_hit_that_fraction_the_same_way_for_the_same_seed(make_emulator):
    def outcomes(seed: int) -> list[bool]:
        emu = make_emulator(conversations=1, seed=seed, stream_error_rate=0.5)
        body = {"inputs": "x", "model": "m", "stream": True}
        with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
            texts = [client.post("/v1/conversations", json=body).text for _ in range(40)]
        return ["conversation.response.error" in text for text in texts]

    first = outcomes(5)
    assert 10 <= sum(first) <= 30
    assert outcomes(5) == first
    assert outcomes(6) != first


def test_the_sdk_parses_the_error_event_and_the_500(make_emulator):
    emu = make_emulator(conversations=1, stream_error_rate=1.0)
    conversations = Mistral(api_key="any-token", server_url=emu.url).beta.conversations
    with conversations.start_stream(inputs="Hello", model="mistral-small-latest") as stream:
        received = list(stream)
    assert [type(e.data).__name__ for e in received] == [
        "ResponseStartedEvent",
        *["MessageOutputEvent"] * DELTAS_BEFORE_ERROR,
        "ResponseErrorEvent",
    ]
    assert (received[-1].data.message, received[-1].data.code) == ("Internal server error", 3000)
    with pytest.raises(SDKError) as failed:
        conversations.start(inputs="Hello", model="mistral-small-latest")
    assert failed.value.status_code == 500


def test_the_command_line_passes_the_stream_error_rate_on():
    config = EmulatorConfig(conversations=1, stream_error_rate=1.0)
    arguments = command_line(config)
    assert arguments[arguments.index("--stream-error-rate") + 1] == "1.0"
    assert "stream_error_rate=1.0" in repr(config)
    with spawn_emulator(config) as emu:
        answer = httpx.post(
            f"{emu.url}/v1/conversations", json={"inputs": "x", "model": "m"}, headers=HEADERS
        )
    assert answer.status_code == 500

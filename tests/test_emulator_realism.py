"""The emulator is as inconvenient as the live API: function calls end turns, turns land when
generation ends, answers fail after the turn was stored, 429s come in two shapes."""

import threading
import time

import httpx
import orjson
import pytest
from test_emulator_schemas import LATEST, assert_valid, sse_events

from emulator.config import EmulatorConfig
from emulator.replies import agent_step, reply_pieces, reply_text, usage_for
from emulator.server import command_line, spawn_emulator

HEADERS = {"Authorization": "Bearer test-token"}
AGENT = "ag_" + "3" * 32
CONFLICT = {
    "object": "error",
    "message": "Conversation is being updated, concurrent requests are not supported",
    "type": "invalid_request_error",
    "param": None,
    "code": 3000,
}


def text_for(step: str) -> str:
    """An input text that makes an agent take `step` ('none', 'tool', 'handoff', 'function')."""
    return next(f"Order {n} please" for n in range(200) if agent_step(f"Order {n} please") == step)


def client_for(emu) -> httpx.Client:
    return httpx.Client(base_url=emu.url, headers=HEADERS, timeout=30)


def wait_until(condition, seconds: float = 20.0) -> bool:
    """Poll `condition` (a hang bound, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_function_call_ends_the_turn_and_its_result_makes_the_agent_answer(make_emulator):
    emu = make_emulator(conversations=1)
    text = text_for("function")
    with client_for(emu) as client:
        called = client.post("/v1/conversations", json={"inputs": text, "agent_id": AGENT}).json()
        cid = called["conversation_id"]
        assert [o["type"] for o in called["outputs"]] == ["function.call"]
        call = called["outputs"][0]
        assert call["confirmation_status"] is None
        wrong = {"type": "function.result", "tool_call_id": "nope12345", "result": "x"}
        rejected = client.post(f"/v1/conversations/{cid}", json={"inputs": [wrong]})
        result = {"type": "function.result", "tool_call_id": call["tool_call_id"], "result": "42"}
        streamed = client.post(
            f"/v1/conversations/{cid}", json={"inputs": [result], "stream": True}
        )
        history = client.get(f"/v1/conversations/{cid}/history").json()["entries"]
    assert rejected.status_code == 400
    assert rejected.json()["message"] == (
        "No function call with tool_call_id nope12345 in this conversation"
    )
    events = sse_events(streamed.text)
    names = [name for name, _ in events]
    assert "function.call.delta" not in names
    assert "".join(d["content"] for n, d in events if n == "message.output.delta") == reply_text(
        "42"
    )
    assert [e["type"] for e in history] == [
        "message.input",
        "function.call",
        "function.result",
        "message.output",
    ]
    assert history[2]["tool_call_id"] == call["tool_call_id"]
    assert emu.store.turns_created == {("start", cid): 1, ("append", cid): 1}


def test_a_streamed_function_call_ends_with_its_deltas_and_the_old_behaviour_is_a_knob(
    make_emulator,
):
    emu = make_emulator(conversations=1)
    text = text_for("function")
    body = {"inputs": text, "agent_id": AGENT, "stream": True}
    with client_for(emu) as client:
        ending = sse_events(client.post("/v1/conversations", json=body).text)
        emu.config.function_calls_end_turn = False
        continuing = sse_events(client.post("/v1/conversations", json=body).text)
    assert [name for name, _ in ending][-2:] == [
        "function.call.delta",
        "conversation.response.done",
    ]
    assert "message.output.delta" not in [name for name, _ in ending]
    assert [name for name, _ in continuing][-2:] == [
        "message.output.delta",
        "conversation.response.done",
    ]


def test_built_in_tools_stay_in_one_turn_with_argument_deltas_and_connector_usage(make_emulator):
    emu = make_emulator(conversations=1)
    text = text_for("tool")
    with client_for(emu) as client:
        body = {"inputs": text, "agent_id": AGENT, "stream": True}
        events = sse_events(client.post("/v1/conversations", json=body).text)
    names = [name for name, _ in events]
    assert names[1] == "tool.execution.started" and events[1][1]["arguments"] == ""
    deltas = [data["arguments"] for name, data in events if name == "tool.execution.delta"]
    assert len(deltas) > 1 and orjson.loads("".join(deltas))["query"]
    assert names[-1] == "conversation.response.done" and "message.output.delta" in names
    usage = events[-1][1]["usage"]
    assert usage == usage_for(text, "web_search")
    assert usage["connectors"] == {"web_search": 1}
    assert usage["total_tokens"] == (
        usage["prompt_tokens"] + usage["completion_tokens"] + usage["connector_tokens"]
    )


def test_reasoning_models_stream_thinking_chunks_before_the_text(make_emulator):
    emu = make_emulator(conversations=1)
    body = {"inputs": "think it over", "model": "magistral-medium-latest", "stream": True}
    with client_for(emu) as client:
        events = sse_events(client.post("/v1/conversations", json=body).text)
        plain = client.post("/v1/conversations", json=body | {"stream": False}).json()
    deltas = [data for name, data in events if name == "message.output.delta"]
    thinking = [d for d in deltas if d["content_index"] == 0]
    assert len(thinking) > 1
    assert all(d["content"]["type"] == "thinking" for d in thinking)
    text = "".join(d["content"] for d in deltas if d["content_index"] == 1)
    assert text == reply_text("think it over")
    for name, data in events:
        assert_valid(LATEST, "ConversationEvents", {"event": name, "data": data})
    assert [chunk["type"] for chunk in plain["outputs"][0]["content"]] == ["thinking", "text"]


def test_a_generating_turn_is_invisible_and_409s_and_lands_though_the_client_left(
    make_emulator,
):
    emu = make_emulator(conversations=1, generation_ms=2000)
    cid = emu.store.conversations_newest_first()[0]["id"]
    with client_for(emu) as client:
        before = client.get(f"/v1/conversations/{cid}").json()
        entries_before = len(client.get(f"/v1/conversations/{cid}/history").json()["entries"])
        body = {"inputs": "long one", "stream": True}
        with client.stream("POST", f"/v1/conversations/{cid}", json=body) as response:
            first = next(response.iter_lines())
        assert first == "event: conversation.response.started"
        during = client.get(f"/v1/conversations/{cid}/history").json()["entries"]
        updated_during = client.get(f"/v1/conversations/{cid}").json()["updated_at"]
        conflicts = [
            client.post(f"/v1/conversations/{cid}", json={"inputs": "me too"}),
            client.post(
                f"/v1/conversations/{cid}/restart",
                json={"inputs": "me too", "from_entry_id": during[0]["id"]},
            ),
            client.delete(f"/v1/conversations/{cid}"),
        ]

        def landed() -> bool:
            return len(client.get(f"/v1/conversations/{cid}/history").json()["entries"]) > len(
                during
            )

        assert wait_until(landed)
        after = client.get(f"/v1/conversations/{cid}/history").json()["entries"]
        updated_after = client.get(f"/v1/conversations/{cid}").json()["updated_at"]
    assert len(during) == entries_before and updated_during == before["updated_at"]
    assert [c.status_code for c in conflicts] == [409, 409, 409]
    assert all(c.json() == CONFLICT for c in conflicts)
    assert [e["type"] for e in after[len(during) :]] == ["message.input", "message.output"]
    assert updated_after > before["updated_at"]
    assert emu.store.turns_created == {("append", cid): 1}


def test_a_started_conversation_appears_only_when_its_first_turn_is_generated(make_emulator):
    emu = make_emulator(conversations=1, generation_ms=2000)
    results: dict[str, httpx.Response] = {}

    def start() -> None:
        with client_for(emu) as client:
            results["start"] = client.post(
                "/v1/conversations", json={"inputs": "slow start", "model": "m"}
            )

    worker = threading.Thread(target=start)
    worker.start()
    assert wait_until(lambda: emu.store.request_counts["start"] == 1)
    with client_for(emu) as client:
        listed_during = client.get("/v1/conversations").json()
        worker.join(30)
        listed_after = client.get("/v1/conversations").json()
    assert len(listed_during) == 1
    assert listed_after[0]["id"] == results["start"].json()["conversation_id"]


@pytest.mark.parametrize("stream", [False, True])
def test_answers_can_fail_after_the_turn_was_stored(make_emulator, stream):
    emu = make_emulator(conversations=1, seed=5)
    outcomes = set()
    with client_for(emu) as client:
        body = {"inputs": "first", "model": "mistral-small-latest"}
        cid = client.post("/v1/conversations", json=body).json()["conversation_id"]
        emu.config.fault_after_commit_rate = 1.0
        for attempt in range(12):
            body = {"inputs": f"try {attempt}", "stream": stream}
            try:
                answer = client.post(f"/v1/conversations/{cid}", json=body)
            except httpx.RemoteProtocolError:
                outcomes.add("dropped")
                continue
            assert "conversation.response.done" not in answer.text
            outcomes.add(answer.status_code)
        history = client.get(f"/v1/conversations/{cid}/history").json()["entries"]
    inputs = [e["content"] for e in history if e["type"] == "message.input"]
    assert inputs[-12:] == [f"try {attempt}" for attempt in range(12)]
    assert history[-1]["content"] == reply_text("try 11")
    assert emu.store.turns_created == {("start", cid): 1, ("append", cid): 12}
    assert outcomes == ({"dropped"} if stream else {502, 504, "dropped"})


def test_delete_removes_the_conversation_everywhere(make_emulator):
    emu = make_emulator(conversations=3)
    cid = emu.store.conversations_newest_first()[1]["id"]
    with client_for(emu) as client:
        deleted = client.delete(f"/v1/conversations/{cid}")
        listed = [c["id"] for c in client.get("/v1/conversations").json()]
        after = [
            client.get(f"/v1/conversations/{cid}{suffix}").status_code
            for suffix in ("", "/history", "/messages")
        ]
        again = client.delete(f"/v1/conversations/{cid}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert cid not in listed and len(listed) == 2
    assert after == [404, 404, 404] and again.status_code == 404


def test_the_list_filters_by_metadata_that_start_stores(make_emulator):
    emu = make_emulator(conversations=20, seed=1)
    with client_for(emu) as client:
        body = {"inputs": "tag me", "model": "m", "metadata": {"run": "r1", "row": 3}}
        started = client.post("/v1/conversations", json=body).json()
        client.post("/v1/conversations", json=body | {"metadata": {"run": "r2", "row": 3}})

        def listed(metadata: dict) -> list[str]:
            params = {"metadata": orjson.dumps(metadata).decode()}
            return [c["id"] for c in client.get("/v1/conversations", params=params).json()]

        by_run = listed({"run": "r1"})
        by_both = listed({"run": "r1", "row": 3})
        by_row = listed({"row": 3})
        none = listed({"run": "r3"})
    assert by_run == by_both == [started["conversation_id"]]
    assert len(by_row) == 2 and none == []
    turn = emu.store.committed_turns[0]
    assert (turn.operation, turn.conversation_id, turn.metadata) == (
        "start",
        started["conversation_id"],
        {"run": "r1", "row": 3},
    )
    assert len(turn.entry_ids) == 2


def test_429s_come_in_both_shapes_with_rate_limit_headers(make_emulator):
    emu = make_emulator(conversations=1, rps=2)
    with client_for(emu) as client:
        limited = [
            answer
            for answer in (client.get("/v1/conversations") for _ in range(8))
            if answer.status_code == 429
        ]
        emu.config.rate_limit_retry_after = False
        time.sleep(1.1)
        bare = [client.get("/v1/conversations") for _ in range(4)][-1]
    bodies = [answer.json() for answer in limited[:2]]
    assert bodies[0] == {"message": "Requests rate limit exceeded"}
    assert bodies[1]["object"] == "error" and bodies[1]["type"] == "rate_limited"
    headers = limited[0].headers
    assert headers["x-ratelimit-limit-req-minute"] == "120"
    assert headers["x-ratelimit-remaining-req-minute"] == "0"
    assert int(headers["retry-after"]) >= 1
    assert bare.status_code == 429 and "retry-after" not in bare.headers
    assert "x-ratelimit-remaining-req-minute" in bare.headers


def test_store_false_turns_are_answered_and_never_counted(make_emulator):
    emu = make_emulator(conversations=1)
    cid = emu.store.conversations_newest_first()[0]["id"]
    with client_for(emu) as client:
        started = client.post(
            "/v1/conversations", json={"inputs": "a", "model": "m", "store": False}
        )
        appended = client.post(f"/v1/conversations/{cid}", json={"inputs": "b", "store": False})
    assert started.status_code == appended.status_code == 200
    assert len(emu.store) == 1 and not emu.store.turns_created and not emu.store.committed_turns


def test_append_and_restart_take_no_inputs(make_emulator):
    emu = make_emulator(conversations=1, thinking_chunks=False)
    cid = emu.store.conversations_newest_first()[0]["id"]
    first = emu.store.history(cid)[0]["id"]
    with client_for(emu) as client:
        appended = client.post(f"/v1/conversations/{cid}", json={})
        restarted = client.post(f"/v1/conversations/{cid}/restart", json={"from_entry_id": first})
    assert appended.status_code == restarted.status_code == 200
    assert appended.json()["outputs"][-1]["content"] == reply_text("")
    new_history = emu.store.history(restarted.json()["conversation_id"])
    assert [e["type"] for e in new_history[1:]] == ["message.output"]


def test_agent_conversations_carry_an_agent_version(make_emulator):
    emu = make_emulator(conversations=1)
    with client_for(emu) as client:
        current = client.post("/v1/conversations", json={"inputs": "hi", "agent_id": AGENT}).json()
        pinned = client.post(
            "/v1/conversations", json={"inputs": "hi", "agent_id": AGENT, "agent_version": 4}
        ).json()
        versions = [
            client.get(f"/v1/conversations/{answer['conversation_id']}").json()["agent_version"]
            for answer in (current, pinned)
        ]
    assert versions == [1, 4]


def test_guardrails_come_back_in_the_response_of_a_guarded_conversation(make_emulator):
    emu = make_emulator(conversations=1)
    guardrails = [{"block_on_error": True}]
    body = {"inputs": "hi", "model": "m", "guardrails": guardrails}
    with client_for(emu) as client:
        answer = client.post("/v1/conversations", json=body).json()
    assert answer["guardrails"] == [{"blocked": False, "categories": {}}]
    assert_valid(LATEST, "ConversationResponse", answer)


def test_the_command_line_carries_the_new_knobs():
    config = EmulatorConfig(
        conversations=1,
        function_calls_end_turn=False,
        thinking_chunks=False,
        generation_ms=5.0,
        fault_after_commit_rate=0.25,
        rate_limit_retry_after=False,
    )
    arguments = command_line(config)
    for flag, value in (("--generation-ms", "5.0"), ("--fault-after-commit-rate", "0.25")):
        assert arguments[arguments.index(flag) + 1] == value
    assert {"--no-function-calls-end-turn", "--no-thinking-chunks", "--no-retry-after"} <= set(
        arguments
    )
    text = text_for("function")
    with spawn_emulator(config) as emu:
        answer = httpx.post(
            f"{emu.url}/v1/conversations", json={"inputs": text, "agent_id": AGENT}, headers=HEADERS
        )
    assert [o["type"] for o in answer.json()["outputs"]] == ["function.call", "message.output"]
    assert reply_pieces(answer.json()["outputs"][-1]["content"])

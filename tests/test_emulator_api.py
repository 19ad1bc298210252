"""The emulator's operations behave as the live API does: pages, turns, branches, errors."""

import re
import threading
import time

import httpx
import orjson
import pytest

from emulator.replies import agent_step, inputs_text, reply_text, usage_for

HEADERS = {"Authorization": "Bearer test-token"}
ID = re.compile(r"^(conv|msg|ag|fc|tool_exec|handoff)_[0-9a-f]{32}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def client_for(emu, headers: dict | None = None) -> httpx.Client:
    return httpx.Client(base_url=emu.url, headers=HEADERS if headers is None else headers)


def sse_events(text: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of an SSE body."""
    pairs = []
    for frame in filter(None, text.split("\n\n")):
        event_line, data_line = frame.split("\n")
        pairs.append((event_line.removeprefix("event: "), orjson.loads(data_line[6:])))
    return pairs


def entries_from_events(events: list[tuple[str, dict]]) -> list[dict]:
    """Rebuild output entries (type and payload, no timestamps) from a turn's stream."""
    outputs: dict[int, dict] = {}
    for name, data in events:
        if "output_index" not in data:
            continue
        entry = outputs.setdefault(data["output_index"], {"id": data["id"]})
        if name == "message.output.delta":
            entry["type"] = "message.output"
            chunks = entry.setdefault("chunks", [])
            if data["content_index"] == len(chunks):
                chunks.append("" if isinstance(data["content"], str) else data["content"])
            if isinstance(data["content"], str):
                chunks[data["content_index"]] += data["content"]
            entry |= {"agent_id": data["agent_id"], "model": data["model"]}
        elif name == "function.call.delta":
            entry["type"] = "function.call"
            entry["arguments"] = entry.get("arguments", "") + data["arguments"]
            entry |= {"name": data["name"], "tool_call_id": data["tool_call_id"]}
            entry |= {"agent_id": data["agent_id"], "model": data["model"]}
            entry["confirmation_status"] = data["confirmation_status"]
        elif name.startswith("tool.execution."):
            entry |= {"type": "tool.execution", "name": data["name"]}
            entry["arguments"] = entry.get("arguments", "") + data.get("arguments", "")
            entry |= {key: data[key] for key in ("info",) if key in data}
        elif name.startswith("agent.handoff."):
            entry["type"] = "agent.handoff"
            entry |= {key: value for key, value in data.items() if "agent" in key}
    return [outputs[index] for index in sorted(outputs)]


def comparable(entry: dict) -> dict:
    """An output entry reduced to what its stream events carry."""
    skipped = {"object", "created_at", "completed_at", "content", "role"}
    if entry["type"] == "tool.execution":
        skipped |= {"agent_id", "model"}
    kept = {key: value for key, value in entry.items() if key not in skipped}
    if entry["type"] == "message.output":
        content = entry["content"]
        chunks = [content] if isinstance(content, str) else content
        kept["chunks"] = [
            c["text"] if c.get("type") == "text" else c for c in map(_as_chunk, chunks)
        ]
    return kept


def _as_chunk(chunk: str | dict) -> dict:
    return {"type": "text", "text": chunk} if isinstance(chunk, str) else chunk


def test_list_pages_newest_first_with_a_short_last_page(emulator):
    with client_for(emulator) as client:
        pages = [
            client.get("/v1/conversations", params={"page": p, "page_size": 25}).json()
            for p in range(4)
        ]
        everything = client.get("/v1/conversations").json()
    assert [len(page) for page in pages] == [25, 25, 10, 0]
    listed = [c for page in pages for c in page]
    assert listed == everything == emulator.store.conversations_newest_first()
    created = [c["created_at"] for c in listed]
    assert created == sorted(created, reverse=True) and len(set(created)) == 60
    assert len({c["id"] for c in listed}) == 60


def test_list_rejects_bad_paging_parameters(emulator):
    with client_for(emulator) as client:
        assert client.get("/v1/conversations", params={"page": "x"}).status_code == 422
        assert client.get("/v1/conversations", params={"page_size": 0}).status_code == 422
        bad = client.get("/v1/conversations", params={"page": -1}).json()["detail"][0]
    assert bad["loc"] == ["query", "page"]


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(make_emulator):
    bodies = []
    for seed in (5, 5, 6):
        emu = make_emulator(conversations=12, seed=seed)
        with client_for(emu) as client:
            listed = client.get("/v1/conversations").content
            ids = [c["id"] for c in orjson.loads(listed)]
            histories = [client.get(f"/v1/conversations/{cid}/history").content for cid in ids]
        bodies.append((listed, histories))
    assert bodies[0] == bodies[1]
    assert bodies[0][0] != bodies[2][0]


def test_ids_and_timestamps_have_the_real_formats(emulator):
    for conversation in emulator.store.conversations_newest_first():
        assert ID.match(conversation["id"]) and conversation["id"].startswith("conv_")
        assert TIMESTAMP.match(conversation["created_at"]) and TIMESTAMP.match(
            conversation["updated_at"]
        )
        assert conversation["created_at"] <= conversation["updated_at"]
        if "agent_id" in conversation:
            assert ID.match(conversation["agent_id"])
        for entry in emulator.store.history(conversation["id"]):
            assert ID.match(entry["id"])
            assert TIMESTAMP.match(entry["created_at"])
            assert entry["completed_at"] is None or TIMESTAMP.match(entry["completed_at"])
            assert conversation["created_at"] <= entry["created_at"] <= conversation["updated_at"]
            if "tool_call_id" in entry:
                assert re.fullmatch(r"[A-Za-z0-9]{9}", entry["tool_call_id"])


def test_messages_are_the_message_entries_of_the_history(emulator):
    with client_for(emulator) as client:
        for conversation in emulator.store.conversations_newest_first()[:20]:
            cid = conversation["id"]
            history = client.get(f"/v1/conversations/{cid}/history").json()
            messages = client.get(f"/v1/conversations/{cid}/messages").json()
            assert history["conversation_id"] == messages["conversation_id"] == cid
            assert messages["messages"] == [
                e for e in history["entries"] if e["type"] in ("message.input", "message.output")
            ]
            assert history["entries"] == emulator.store.history(cid)


def test_start_lands_at_the_head_and_append_keeps_the_id_and_moves_updated_at(make_emulator):
    emu = make_emulator(conversations=5)
    with client_for(emu) as client:
        body = {
            "inputs": "Where is my parcel?",
            "model": "mistral-small-latest",
            "instructions": "Be brief.",
        }
        started = client.post("/v1/conversations", json=body).json()
        cid = started["conversation_id"]
        assert client.get("/v1/conversations", params={"page_size": 1}).json()[0]["id"] == cid
        assert [o["content"] for o in started["outputs"]] == [reply_text("Where is my parcel?")]
        assert started["usage"] == usage_for("Where is my parcel?")
        conversation = client.get(f"/v1/conversations/{cid}").json()
        assert conversation["model"] == "mistral-small-latest"
        assert conversation["instructions"] == "Be brief."
        entries = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And the "},
                    {"type": "text", "text": "invoice?"},
                ],
            }
        ]
        appended = client.post(f"/v1/conversations/{cid}", json={"inputs": entries}).json()
        assert appended["conversation_id"] == cid
        assert (
            appended["outputs"][-1]["content"]
            == reply_text(inputs_text(entries))
            == reply_text("And the invoice?")
        )
        after = client.get(f"/v1/conversations/{cid}").json()
        history = client.get(f"/v1/conversations/{cid}/history").json()["entries"]
    assert after["updated_at"] > conversation["updated_at"]
    assert [e["type"] for e in history] == ["message.input", "message.output"] * 2
    assert history[1] == started["outputs"][0] and history[3] == appended["outputs"][0]
    assert history[2]["content"] == entries[0]["content"]


def test_agent_replies_are_deterministic_and_streams_carry_the_same_outputs(make_emulator):
    emu = make_emulator(conversations=2)
    agent_id = "ag_" + "1" * 32
    steps_seen = set()
    with client_for(emu) as client:
        for attempt in range(12):
            text = f"Book a table for {attempt}"
            plain = client.post(
                "/v1/conversations", json={"inputs": text, "agent_id": agent_id}
            ).json()
            streamed = client.post(
                "/v1/conversations", json={"inputs": text, "agent_id": agent_id, "stream": True}
            )
            events = sse_events(streamed.text)
            assert events[0][0] == "conversation.response.started"
            assert events[-1] == ("conversation.response.done", events[-1][1])
            connector = "web_search" if agent_step(text) == "tool" else None
            assert events[-1][1]["usage"] == plain["usage"] == usage_for(text, connector)
            streamed_id = events[0][1]["conversation_id"]
            stored = client.get(f"/v1/conversations/{streamed_id}/history").json()["entries"]
            rebuilt = entries_from_events(events)
            assert [e["id"] for e in rebuilt] == [e["id"] for e in stored[1:]]
            assert rebuilt == [comparable(e) for e in stored[1:]]
            fresh_ids = {"id": None, "tool_call_id": None}
            plain_outputs = [comparable(e) | fresh_ids for e in plain["outputs"]]
            assert plain_outputs == [e | fresh_ids for e in rebuilt]
            if rebuilt[-1]["type"] == "message.output":
                assert rebuilt[-1]["chunks"][0] == reply_text(text)
            steps_seen.add(tuple(e["type"] for e in rebuilt))
    assert steps_seen == {
        ("message.output",),
        ("tool.execution", "message.output"),
        ("agent.handoff", "message.output"),
        ("function.call",),
    }


def test_restart_branches_a_new_conversation_from_the_entry(emulator, make_emulator):
    emu = make_emulator(conversations=10, seed=7)
    source = emu.store.conversations_newest_first()[3]
    source_history = emu.store.history(source["id"])
    branch_at = source_history[2]["id"]
    with client_for(emu) as client:
        body = {"inputs": "Try another way", "from_entry_id": branch_at, "metadata": {"branch": 1}}
        restarted = client.post(f"/v1/conversations/{source['id']}/restart", json=body).json()
        new_id = restarted["conversation_id"]
        assert new_id != source["id"]
        assert client.get("/v1/conversations", params={"page_size": 1}).json()[0]["id"] == new_id
        new = client.get(f"/v1/conversations/{new_id}").json()
        history = client.get(f"/v1/conversations/{new_id}/history").json()["entries"]
    assert history[:3] == source_history[:3]
    assert history[3]["content"] == "Try another way"
    assert history[4:] == restarted["outputs"]
    assert emu.store.history(source["id"]) == source_history
    assert new["metadata"] == {"branch": 1}
    assert new.get("model") == source.get("model") and new.get("agent_id") == source.get("agent_id")


def test_store_false_answers_without_persisting(make_emulator):
    emu = make_emulator(conversations=3)
    cid = emu.store.conversations_newest_first()[0]["id"]
    before = emu.store.history(cid)
    with client_for(emu) as client:
        started = client.post(
            "/v1/conversations", json={"inputs": "x y", "model": "m", "store": False}
        )
        assert started.status_code == 200
        assert (
            client.get(f"/v1/conversations/{started.json()['conversation_id']}").status_code == 404
        )
        appended = client.post(f"/v1/conversations/{cid}", json={"inputs": "x y", "store": False})
        content = appended.json()["outputs"][0]["content"]
        # A reasoning model's answer starts with a thinking chunk; the text chunk follows.
        text = content if isinstance(content, str) else content[-1]["text"]
        assert text == reply_text("x y")
    assert emu.store.history(cid) == before
    assert len(emu.store) == 3


def test_unknown_conversations_and_entries_are_404(emulator):
    missing = "conv_" + "f" * 32
    cid = emulator.store.conversations_newest_first()[0]["id"]
    with client_for(emulator) as client:
        answers = [
            client.get(f"/v1/conversations/{missing}"),
            client.get(f"/v1/conversations/{missing}/history"),
            client.get(f"/v1/conversations/{missing}/messages"),
            client.post(f"/v1/conversations/{missing}", json={"inputs": "hi"}),
            client.post(
                f"/v1/conversations/{missing}/restart",
                json={"inputs": "hi", "from_entry_id": "msg_x"},
            ),
            client.post(
                f"/v1/conversations/{cid}/restart",
                json={"inputs": "hi", "from_entry_id": "msg_" + "0" * 32},
            ),
        ]
    for answer in answers:
        assert answer.status_code == 404
        body = answer.json()
        assert body["object"] == "error" and body["message"] and body["type"] and "code" in body
    assert emulator.store.history(cid) == emulator.store.history(cid)


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/conversations", {"model": "m"}, ["body", "inputs"]),
        ("/v1/conversations", {"inputs": "hi"}, ["body"]),
        ("/v1/conversations", {"inputs": "hi", "model": "m", "agent_id": "ag_1"}, ["body"]),
        ("/v1/conversations", {"inputs": 5, "model": "m"}, ["body", "inputs"]),
        ("/v1/conversations", {"inputs": "hi", "model": "m", "stream": "yes"}, ["body", "stream"]),
        (
            "/v1/conversations",
            {"inputs": [{"role": "robot", "content": "x"}], "model": "m"},
            ["body", "inputs", 0, "role"],
        ),
        ("/v1/conversations", [1, 2], ["body"]),
        ("{cid}", {"inputs": "hi", "surprise": True}, ["body", "surprise"]),
        (
            "{cid}",
            {"inputs": [{"type": "function.result", "tool_call_id": "abc"}]},
            ["body", "inputs", 0, "result"],
        ),
        ("{cid}/restart", {"inputs": "hi"}, ["body", "from_entry_id"]),
    ],
)
def test_invalid_bodies_are_422_with_a_detail_list(emulator, path, body, loc):
    cid = emulator.store.conversations_newest_first()[0]["id"]
    url = path.replace("{cid}", f"/v1/conversations/{cid}")
    before = emulator.store.history(cid)
    with client_for(emulator) as client:
        answer = client.post(url, json=body)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert loc in [problem["loc"] for problem in detail]
    assert all({"type", "loc", "msg"} <= problem.keys() for problem in detail)
    assert emulator.store.history(cid) == before


def test_a_body_that_is_not_json_is_422(emulator):
    with client_for(emulator) as client:
        answer = client.post(
            "/v1/conversations", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_without_an_api_key_any_bearer_token_passes_and_none_is_401(emulator):
    with client_for(emulator, headers={"Authorization": "Bearer anything"}) as client:
        assert client.get("/v1/conversations").status_code == 200
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        with client_for(emulator, headers=headers) as client:
            answer = client.get("/v1/conversations")
        assert answer.status_code == 401
        assert answer.json()["message"] == "Unauthorized"


def test_with_an_api_key_only_that_token_passes(make_emulator):
    emu = make_emulator(conversations=2, api_key="s3cret-key")
    with client_for(emu, headers={"Authorization": "Bearer s3cret-key"}) as client:
        assert client.get("/v1/conversations").status_code == 200
    with client_for(emu, headers={"Authorization": "Bearer other"}) as client:
        answer = client.get("/v1/conversations")
    assert answer.status_code == 401
    assert "s3cret" not in answer.text and "s3cret" not in repr(emu.config)
    assert emu.store.rejected_counts[401] == 1


def test_a_turn_during_a_running_stream_is_409_while_reads_still_work(make_emulator):
    emu = make_emulator(conversations=2, token_delay_ms=30)
    cid = emu.store.conversations_newest_first()[0]["id"]
    first_event = threading.Event()
    results: dict[str, object] = {}

    def stream_a_turn() -> None:
        with (
            client_for(emu) as client,
            client.stream(
                "POST", f"/v1/conversations/{cid}", json={"inputs": "slow one", "stream": True}
            ) as response,
        ):
            chunks = []
            for chunk in response.iter_text():
                chunks.append(chunk)
                first_event.set()
            results["stream"] = "".join(chunks)

    worker = threading.Thread(target=stream_a_turn)
    worker.start()
    assert first_event.wait(10)
    with client_for(emu) as client:
        conflict = client.post(f"/v1/conversations/{cid}", json={"inputs": "too soon"})
        restart_conflict = client.post(
            f"/v1/conversations/{cid}/restart",
            json={"inputs": "too soon", "from_entry_id": emu.store.history(cid)[0]["id"]},
        )
        reads = [
            client.get(f"/v1/conversations/{cid}{suffix}").status_code
            for suffix in ("", "/history", "/messages")
        ]
        worker.join(10)
        later = client.post(f"/v1/conversations/{cid}", json={"inputs": "now it is fine"})
    assert conflict.status_code == 409 and restart_conflict.status_code == 409
    assert (
        conflict.json()["message"]
        == "Conversation is being updated, concurrent requests are not supported"
    )
    assert reads == [200, 200, 200]
    assert "conversation.response.done" in results["stream"]
    assert later.status_code == 200


def test_touch_add_and_delete_drive_scenarios(make_emulator):
    emu = make_emulator(conversations=4, seed=2)
    store = emu.store
    cid = store.conversations_newest_first()[2]["id"]
    before, entries_before = store.conversation(cid), len(store.history(cid))
    time.sleep(0.002)
    store.touch(cid)
    after = store.conversation(cid)
    history = store.history(cid)
    assert (
        after["updated_at"] > before["updated_at"] and after["created_at"] == before["created_at"]
    )
    assert len(history) > entries_before
    assert history[entries_before]["type"] == "message.input"
    assert history[-1]["type"] == "message.output"
    added = store.add_conversation()
    assert store.conversations_newest_first()[0]["id"] == added["id"]
    store.delete(cid)
    with client_for(emu) as client:
        listed = [c["id"] for c in client.get("/v1/conversations").json()]
        assert client.get(f"/v1/conversations/{added['id']}/history").status_code == 200
        assert client.get(f"/v1/conversations/{cid}").status_code == 404
    assert listed[0] == added["id"] and cid not in listed and len(listed) == 4
    assert store.reply_text("same words") == reply_text("same words")


def test_requests_are_counted_per_operation_and_logged(make_emulator):
    emu = make_emulator(conversations=3)
    cid = emu.store.conversations_newest_first()[0]["id"]
    first = emu.store.history(cid)[0]["id"]
    with client_for(emu) as client:
        client.get("/v1/conversations")
        client.get(f"/v1/conversations/{cid}")
        client.get(f"/v1/conversations/{cid}/history")
        client.get(f"/v1/conversations/{cid}/messages")
        for stream in (False, True):
            client.post("/v1/conversations", json={"inputs": "a", "model": "m", "stream": stream})
            client.post(f"/v1/conversations/{cid}", json={"inputs": "b", "stream": stream})
            client.post(
                f"/v1/conversations/{cid}/restart",
                json={"inputs": "c", "from_entry_id": first, "stream": stream},
            )
    operations = [
        "list",
        "get",
        "history",
        "messages",
        "start",
        "append",
        "restart",
        "start_stream",
        "append_stream",
        "restart_stream",
    ]
    assert emu.store.request_counts == dict.fromkeys(operations, 1)
    assert emu.store.request_log[:2] == [("list", ""), ("get", cid)]
    assert ("restart_stream", cid) in emu.store.request_log
    emu.store.reset_counts()
    assert not emu.store.request_counts and not emu.store.request_log


def test_delete_and_the_metadata_filter_of_the_latest_spec(make_emulator):
    emu = make_emulator(conversations=30, seed=8)
    tagged = next(c for c in emu.store.conversations_newest_first() if c["metadata"])
    team = tagged["metadata"]["team"]
    expected = [
        c["id"]
        for c in emu.store.conversations_newest_first()
        if (c["metadata"] or {}).get("team") == team
    ]
    with client_for(emu) as client:
        filtered = client.get(
            "/v1/conversations", params={"metadata": orjson.dumps({"team": team}).decode()}
        ).json()
        assert [c["id"] for c in filtered] == expected and 0 < len(expected) < 30
        deleted = client.delete(f"/v1/conversations/{tagged['id']}")
        assert deleted.status_code == 204
        assert client.get(f"/v1/conversations/{tagged['id']}").status_code == 404
        assert client.delete(f"/v1/conversations/{tagged['id']}").status_code == 404
    assert len(emu.store) == 29 and emu.store.request_counts["delete"] == 2

"""The ten operations against a running emulator, and the errors the client maps statuses to."""

import asyncio
import contextlib
from typing import Any

import pytest

from extract.client import ClientConfig, ConversationsClient
from extract.errors import ApiKeyRejected, Conflict, NotFound, RequestRejected
from extract.events import StreamEvent

MODEL = "mistral-medium-latest"
# The emulator, like the API, wants a bearer token even when it checks no particular key.
ANY_KEY = "sk-emulator-any"
MISSING_ID = "conv_" + "0" * 32


def _config(emu: Any, **knobs: Any) -> ClientConfig:
    """A client config for ``emu`` with its key and fast backoff, so tests stay quick."""
    return ClientConfig(
        base_url=emu.url, api_key=emu.config.api_key or ANY_KEY, backoff_initial=0.001, **knobs
    )


def _output_text(response: dict) -> str:
    """The assistant text of a ConversationResponse's message outputs."""
    parts = []
    for entry in response["outputs"]:
        if entry["type"] != "message.output":
            continue
        content = entry["content"]
        parts.append(
            content
            if isinstance(content, str)
            else "".join(chunk.get("text", "") for chunk in content)
        )
    return "".join(parts)


def _streamed_text(events: list[StreamEvent]) -> str:
    """The assistant text carried by message.output.delta events."""
    parts = []
    for event in events:
        if event.type == "message.output.delta":
            content = event.data["content"]
            parts.append(content if isinstance(content, str) else content.get("text", ""))
    return "".join(parts)


def test_read_operations_return_the_stores_data(emulator: Any) -> None:
    store = emulator.store
    expected_ids = [c["id"] for c in store.conversations_newest_first()]
    cid = expected_ids[3]
    before = dict(store.request_counts)

    async def read() -> tuple[list[dict], dict, dict, dict, ConversationsClient]:
        async with ConversationsClient(_config(emulator)) as client:
            listed = await client.list_conversations(page=0, page_size=100)
            got = await client.get_conversation(cid)
            history = await client.get_history(cid)
            messages = await client.get_messages(cid)
        return listed, got, history, messages, client

    listed, got, history, messages, client = asyncio.run(read())
    assert [c["id"] for c in listed] == expected_ids
    assert len(listed) == 60
    assert got == store.conversation(cid)
    assert history["conversation_id"] == cid
    assert [e["id"] for e in history["entries"]] == [e["id"] for e in store.history(cid)]
    message_types = {"message.input", "message.output"}
    assert [e["id"] for e in messages["messages"]] == [
        e["id"] for e in store.history(cid) if e["type"] in message_types
    ]
    assert client.stats.requests == 4
    assert client.stats.retries == 0
    assert client.stats.statuses == {200: 4}
    after = store.request_counts
    for operation in ("list", "get", "history", "messages"):
        assert after[operation] - before.get(operation, 0) == 1


def test_start_append_and_restart_return_conversation_responses(make_emulator: Any) -> None:
    emu = make_emulator(conversations=3, seed=11)
    store = emu.store

    async def write() -> tuple[dict, dict, dict]:
        async with ConversationsClient(_config(emu)) as client:
            started = await client.start_conversation({"inputs": "Hello there", "model": MODEL})
            cid = started["conversation_id"]
            appended = await client.append_to_conversation(cid, {"inputs": "And then?"})
            first_entry = store.history(cid)[0]["id"]
            restarted = await client.restart_conversation(
                cid, {"inputs": "Try again", "from_entry_id": first_entry}
            )
        return started, appended, restarted

    started, appended, restarted = asyncio.run(write())
    cid = started["conversation_id"]
    assert cid.startswith("conv_")
    assert _output_text(started) == store.reply_text("Hello there")
    assert appended["conversation_id"] == cid
    assert _output_text(appended) == store.reply_text("And then?")
    assert restarted["conversation_id"] not in (cid, "")
    assert _output_text(restarted) == store.reply_text("Try again")
    assert len(store.history(cid)) == 4
    assert (store.request_counts["start"], store.request_counts["append"]) == (1, 1)
    assert store.request_counts["restart"] == 1
    assert sum(store.request_counts[op] for op in ("start_stream", "append_stream")) == 0


def test_the_three_streams_yield_typed_complete_events(make_emulator: Any) -> None:
    emu = make_emulator(conversations=3, seed=12, token_delay_ms=2)
    store = emu.store

    async def stream() -> tuple[list[StreamEvent], list[StreamEvent], list[StreamEvent]]:
        async with ConversationsClient(_config(emu)) as client:
            started = [
                e async for e in client.stream_start({"inputs": "Stream me", "model": MODEL})
            ]
            cid = started[0].data["conversation_id"]
            appended = [e async for e in client.stream_append(cid, {"inputs": "More please"})]
            first_entry = store.history(cid)[0]["id"]
            body = {"inputs": "Branch here", "from_entry_id": first_entry}
            restarted = [e async for e in client.stream_restart(cid, body)]
        return started, appended, restarted

    started, appended, restarted = asyncio.run(stream())
    for events, text in (
        (started, "Stream me"),
        (appended, "More please"),
        (restarted, "Branch here"),
    ):
        assert events[0].type == "conversation.response.started"
        assert events[-1].type == "conversation.response.done"
        assert "usage" in events[-1].data
        assert all(e.data.get("type", e.type) == e.type for e in events)
        assert _streamed_text(events) == store.reply_text(text)
        assert [e.elapsed_ms for e in events] == sorted(e.elapsed_ms for e in events)
        assert all(e.raw for e in events)
    cid = started[0].data["conversation_id"]
    assert appended[0].data["conversation_id"] == cid
    assert restarted[0].data["conversation_id"] != cid
    counts = store.request_counts
    assert (counts["start_stream"], counts["append_stream"], counts["restart_stream"]) == (1, 1, 1)
    assert (counts["start"], counts["append"], counts["restart"]) == (0, 0, 0)


def test_missing_conversation_is_not_found_and_not_retried(emulator: Any) -> None:
    async def fetch() -> ConversationsClient:
        async with ConversationsClient(_config(emulator)) as client:
            with pytest.raises(NotFound) as caught:
                await client.get_history(MISSING_ID)
            assert caught.value.status == 404
            assert caught.value.operation == "history"
        return client

    client = asyncio.run(fetch())
    assert (client.stats.requests, client.stats.retries) == (1, 0)


def test_invalid_body_is_rejected_with_its_detail_and_not_retried(make_emulator: Any) -> None:
    emu = make_emulator(conversations=2)

    async def start() -> ConversationsClient:
        async with ConversationsClient(_config(emu)) as client:
            with pytest.raises(RequestRejected) as caught:
                await client.start_conversation({"model": MODEL, "inputs": 42})
            rejected = caught.value
            assert rejected.status == 422
            assert isinstance(rejected.detail, list)
            assert rejected.detail
            assert "inputs" in rejected.message
        return client

    client = asyncio.run(start())
    assert (client.stats.requests, client.stats.retries) == (1, 0)
    assert emu.store.request_counts["start"] == 1


def test_a_wrong_or_missing_key_is_a_clear_error_without_the_key(make_emulator: Any) -> None:
    right, wrong = "sk-right-5f2a9c", "sk-wrong-77b1e0"
    emu = make_emulator(conversations=2, api_key=right)

    async def call(key: str | None) -> list[dict]:
        async with ConversationsClient(ClientConfig(base_url=emu.url, api_key=key)) as client:
            return await client.list_conversations(page=0, page_size=10)

    assert len(asyncio.run(call(right))) == 2
    for key in (wrong, None):
        with pytest.raises(ApiKeyRejected) as caught:
            asyncio.run(call(key))
        error = caught.value
        assert str(error) == (
            f"list: HTTP 401: API key rejected by {emu.url}: check MISTRAL_API_KEY"
        )
        for shown in (str(error), repr(error), repr(error.args)):
            assert wrong not in shown
            assert right not in shown


def test_a_second_turn_while_one_is_streaming_is_a_conflict(make_emulator: Any) -> None:
    emu = make_emulator(conversations=2, token_delay_ms=10)

    async def overlap() -> ConversationsClient:
        async with ConversationsClient(_config(emu)) as client:
            events = client.stream_start({"inputs": "a long answer please", "model": MODEL})
            async with contextlib.aclosing(events):
                first = await anext(events)
                cid = first.data["conversation_id"]
                with pytest.raises(Conflict) as caught:
                    await client.append_to_conversation(cid, {"inputs": "too soon"})
                assert caught.value.status == 409
                rest = [e async for e in events]
            assert rest[-1].type == "conversation.response.done"
            after = await client.append_to_conversation(cid, {"inputs": "now it is my turn"})
            assert after["conversation_id"] == cid
        return client

    client = asyncio.run(overlap())
    assert client.stats.statuses == {200: 2, 409: 1}
    assert client.stats.retries == 0


def test_a_stream_left_early_frees_its_slot(make_emulator: Any) -> None:
    emu = make_emulator(conversations=2, token_delay_ms=20)

    async def leave_early() -> dict:
        async with ConversationsClient(_config(emu, concurrency=1)) as client:
            events = client.stream_start({"inputs": "stop me early", "model": MODEL})
            async with contextlib.aclosing(events):
                await anext(events)
            # With one slot, this call would wait forever if the abandoned stream still held it.
            return await asyncio.wait_for(client.get_conversation(emu_first_id(emu)), timeout=5)

    assert asyncio.run(leave_early())["object"] == "conversation"


def emu_first_id(emu: Any) -> str:
    """The newest conversation id of ``emu``."""
    return emu.store.conversations_newest_first()[0]["id"]


def test_calls_outside_async_with_fail_clearly() -> None:
    client = ConversationsClient(ClientConfig(base_url="http://127.0.0.1:9"))
    with pytest.raises(RuntimeError, match="must be used as `async with"):
        asyncio.run(client.list_conversations())


def test_calls_and_streams_go_through_the_proxy_the_environment_names(
    make_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emulator(conversations=3)
    listed_before = [c["id"] for c in emu.store.conversations_newest_first()]
    # The API's host does not resolve: only a client that sends everything to the proxy (here the
    # emulator, which answers absolute-form requests) gets an answer.
    monkeypatch.setenv("HTTP_PROXY", emu.url)
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    config = ClientConfig(
        base_url="http://api.mistral.invalid", api_key=ANY_KEY, max_retries=0, connect_timeout=5
    )

    async def call() -> tuple[list[dict], list[StreamEvent]]:
        async with ConversationsClient(config) as client:
            listed = await client.list_conversations()
            streamed = [e async for e in client.stream_start({"inputs": "hi", "model": MODEL})]
        return listed, streamed

    listed, streamed = asyncio.run(call())
    assert [c["id"] for c in listed] == listed_before
    assert streamed[-1].type == "conversation.response.done"


def test_the_list_filtered_by_metadata_holds_only_the_tagged_conversation(
    make_emulator: Any,
) -> None:
    emu = make_emulator(conversations=5)
    tag = {"convo_etl_run": "run-1", "convo_etl_row": 'row "7" & more'}

    async def start_and_list() -> tuple[str, list[dict], list[dict]]:
        async with ConversationsClient(_config(emu)) as client:
            started = await client.start_conversation(
                {"model": MODEL, "inputs": "hello", "metadata": tag}
            )
            tagged = await client.list_conversations(page=0, page_size=100, metadata=tag)
            other = await client.list_conversations(metadata={"convo_etl_run": "run-2"})
            return started["conversation_id"], tagged, other

    cid, tagged, other = asyncio.run(start_and_list())
    assert [c["id"] for c in tagged] == [cid]
    assert other == []

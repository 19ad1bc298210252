"""The official mistralai SDK, pointed at the emulator, runs all ten operations and parses them."""

import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from emulator.replies import agent_step, reply_text


def test_the_sdk_runs_all_ten_operations(make_emulator):
    emu = make_emulator(conversations=40, seed=9)
    client = Mistral(api_key="any-token", server_url=emu.url)
    conversations = client.beta.conversations
    listed = conversations.list(page=0, page_size=40)
    assert [c.id for c in listed] == [c["id"] for c in emu.store.conversations_newest_first()]
    assert {type(c).__name__ for c in listed} == {"ModelConversation", "AgentConversation"}
    entry_kinds = set()
    for conversation in listed:
        assert conversations.get(conversation_id=conversation.id).id == conversation.id
        history = conversations.get_history(conversation_id=conversation.id)
        messages = conversations.get_messages(conversation_id=conversation.id)
        entry_kinds |= {type(entry).__name__ for entry in history.entries}
        assert len(messages.messages) <= len(history.entries)
    assert entry_kinds == {
        "MessageInputEntry",
        "MessageOutputEntry",
        "FunctionCallEntry",
        "FunctionResultEntry",
        "ToolExecutionEntry",
        "AgentHandoffEntry",
    }

    agent_id = next(c.agent_id for c in listed if type(c).__name__ == "AgentConversation")
    started = conversations.start(inputs="Hello from the SDK", model="mistral-small-latest")
    assert started.outputs[-1].content == reply_text("Hello from the SDK")
    assert started.usage.total_tokens > 0
    appended = conversations.append(conversation_id=started.conversation_id, inputs="And then?")
    assert appended.conversation_id == started.conversation_id
    first_entry = conversations.get_history(conversation_id=started.conversation_id).entries[0]
    restarted = conversations.restart(
        conversation_id=started.conversation_id, inputs="Again", from_entry_id=first_entry.id
    )
    assert restarted.conversation_id != started.conversation_id

    streams = [
        conversations.start_stream(inputs="Stream to an agent", agent_id=agent_id),
        conversations.append_stream(conversation_id=started.conversation_id, inputs="More"),
        conversations.restart_stream(
            conversation_id=started.conversation_id, inputs="Branch", from_entry_id=first_entry.id
        ),
    ]
    for stream in streams:
        with stream as events:
            received = list(events)
        assert received[0].event == "conversation.response.started"
        assert received[-1].event == "conversation.response.done"
        assert type(received[-1].data).__name__ == "ResponseDoneEvent"
        deltas = [e.data.content for e in received if e.event == "message.output.delta"]
        calls = [e.data for e in received if e.event == "function.call.delta"]
        # "Stream to an agent" makes the agent call a function: that ends the turn.
        assert calls or "".join(d for d in deltas if isinstance(d, str)).startswith("Noted:")
        assert not (calls and deltas)
        assert not any(getattr(e.data, "is_unknown", False) for e in received)
    assert set(emu.store.request_counts) == {
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
    }


def test_the_sdk_round_trips_a_function_call_deletes_and_filters_by_metadata(make_emulator):
    emu = make_emulator(conversations=5, seed=4)
    conversations = Mistral(api_key="any-token", server_url=emu.url).beta.conversations
    agent_id = "ag_" + "2" * 32
    text = next(
        f"Check order {n}" for n in range(50) if agent_step(f"Check order {n}") == "function"
    )
    called = conversations.start(inputs=text, agent_id=agent_id, metadata={"suite": "sdk"})
    (call,) = called.outputs
    assert type(call).__name__ == "FunctionCallEntry"
    result = {"type": "function.result", "tool_call_id": call.tool_call_id, "result": "shipped"}
    answered = conversations.append(conversation_id=called.conversation_id, inputs=[result])
    assert [type(o).__name__ for o in answered.outputs] == ["MessageOutputEntry"]
    assert answered.outputs[0].content == reply_text("shipped")
    history = conversations.get_history(conversation_id=called.conversation_id).entries
    assert [type(e).__name__ for e in history] == [
        "MessageInputEntry",
        "FunctionCallEntry",
        "FunctionResultEntry",
        "MessageOutputEntry",
    ]
    assert conversations.get(conversation_id=called.conversation_id).agent_version == 1

    filtered = conversations.list(metadata={"suite": "sdk"})
    assert [c.id for c in filtered] == [called.conversation_id]
    conversations.delete(conversation_id=called.conversation_id)
    assert conversations.list(metadata={"suite": "sdk"}) == []
    with pytest.raises(SDKError) as gone:
        conversations.get(conversation_id=called.conversation_id)
    assert gone.value.status_code == 404
    assert emu.store.turns_created == {
        ("start", called.conversation_id): 1,
        ("append", called.conversation_id): 1,
    }

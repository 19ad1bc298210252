"""The synthetic data covers every form the API produces, at realistic sizes, fast."""

import statistics
import time
from collections import Counter

import orjson

from emulator.replies import reply_pieces, reply_text, usage_for
from emulator.store import ConversationStore


def test_every_entry_type_and_content_form_appears():
    store = ConversationStore(conversations=600, seed=7)
    conversations = store.conversations_newest_first()
    entry_types, input_chunks, output_chunks, argument_kinds = Counter(), set(), set(), set()
    texts, null_completed = [], 0
    for conversation in conversations:
        for entry in store.history(conversation["id"]):
            entry_types[entry["type"]] += 1
            null_completed += entry["completed_at"] is None
            content = entry.get("content")
            if isinstance(content, list):
                chunks = input_chunks if entry["type"] == "message.input" else output_chunks
                chunks.update(chunk["type"] for chunk in content)
                texts += [chunk["text"] for chunk in content if chunk["type"] == "text"]
            elif isinstance(content, str):
                texts.append(content)
                (input_chunks if entry["type"] == "message.input" else output_chunks).add("string")
            if entry["type"] == "function.call":
                argument_kinds.add(type(entry["arguments"]).__name__)
    assert set(entry_types) == {
        "message.input",
        "message.output",
        "function.call",
        "function.result",
        "tool.execution",
        "agent.handoff",
    }
    assert input_chunks == {"string", "text", "image_url", "document_url", "tool_file"}
    assert output_chunks == {"string", "text", "tool_reference", "thinking"}
    assert argument_kinds == {"str", "dict"}
    assert null_completed > 0
    assert "" in texts
    assert any(not text.isascii() for text in texts)
    assert any("\u0000" in text for text in texts)
    assert max(len(text) for text in texts) > 20_000
    kinds = Counter("agent" if "agent_id" in c else "model" for c in conversations)
    assert kinds["agent"] > 100 and kinds["model"] > 100
    assert len({c["model"] for c in conversations if "model" in c}) >= 5
    assert len({c["agent_id"] for c in conversations if "agent_id" in c}) >= 4
    with_metadata = [c for c in conversations if c["metadata"]]
    assert 0 < len(with_metadata) < len(conversations)
    days = {c["created_at"][:10] for c in conversations}
    assert 25 <= len(days) <= 31
    assert any(c["instructions"] for c in conversations if "model" in c)
    assert any(c["tools"] for c in conversations if "model" in c)


def test_histories_are_modest_with_a_few_big_ones():
    store = ConversationStore(conversations=1000, seed=3)
    ids = [c["id"] for c in store.conversations_newest_first()]
    lengths = [len(store.history(cid)) for cid in ids]
    sizes = [len(store.history_json(cid)) for cid in ids]
    assert 4 <= statistics.median(lengths) <= 14
    assert 1_000 <= statistics.median(sizes) <= 10_000
    assert max(lengths) >= 40 and max(sizes) > 50_000
    assert sum(length > 20 for length in lengths) < 30


def test_twenty_thousand_conversations_are_ready_in_seconds():
    started = time.perf_counter()
    store = ConversationStore(conversations=20_000, seed=1)
    first_page = orjson.loads(store.list_json(0, 100, None))
    last = store.conversations_newest_first()[-1]
    history = orjson.loads(store.history_json(last["id"]))
    elapsed = time.perf_counter() - started
    assert len(store) == 20_000 and len(first_page) == 100
    assert history["entries"] and history["conversation_id"] == last["id"]
    assert elapsed < 5.0


def test_replies_are_multi_word_pure_functions_of_the_text():
    assert reply_text("Where is my order?") == reply_text("Where is my order?")
    assert reply_text("Where is my order?") != reply_text("Where is my invoice?")
    for text in ("", "hi", "日本語", "x " * 5000):
        reply = reply_text(text)
        assert len(reply.split()) >= 6
        assert "".join(reply_pieces(reply)) == reply and len(reply_pieces(reply)) >= 6
        usage = usage_for(text)
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert usage["completion_tokens"] == len(reply.split())

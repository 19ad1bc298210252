"""The emulator's live state: conversations newest first, their histories, and what was asked of it.

Synthetic histories are generated when read, from (seed, index), and kept only once a turn
changes them: 20,000 conversations are ready in about a second and memory stays bounded by
the caches (recent histories and serialized bodies, least recently used dropped first). The
body cache holds every body of 20,000 synthetic conversations (~11 KB each), so a benchmark's
crawl is served from it rather than from regenerated histories. A
lock guards mutations, since tests call into the store from their own thread while the
server's loop runs in another.
"""

import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from emulator import replies
from emulator.formats import format_timestamp, now_micros, parse_timestamp, start_of_today_micros
from emulator.synthetic import synthetic_conversation, synthetic_history
from emulator.turns import build_turn

_MESSAGE_TYPES = frozenset(("message.input", "message.output"))
_GENERATED_CACHE = 256
_BODY_CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class CommittedTurn:
    """One turn a start, append or restart stored: where it landed and what it added."""

    operation: str
    conversation_id: str
    entry_ids: tuple[str, ...]
    metadata: dict | None


@dataclass(slots=True)
class _Record:
    """One conversation: its header, its entries once changed (or live), its JSON header."""

    meta: dict
    synthetic_index: int | None
    entries: list[dict] | None = None
    meta_json: bytes | None = None


class _Recent:
    """A least-recently-used cache bounded by the total weight of its values."""

    def __init__(self, budget: int, weigh: Callable[[Any], int] = lambda _: 1) -> None:
        self.budget = budget
        self.weigh = weigh
        self.total = 0
        self.items: OrderedDict[object, Any] = OrderedDict()

    def remember(self, key: object, value: object) -> None:
        """Keep `value`, dropping the least recently used items beyond the budget."""
        self.discard(key)
        self.items[key] = value
        self.total += self.weigh(value)
        while self.total > self.budget:
            self.total -= self.weigh(self.items.popitem(last=False)[1])

    def recall(self, key: object) -> Any:
        """The value kept for `key` (now the most recently used), or None."""
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def discard(self, key: object) -> None:
        """Forget `key`, if kept."""
        value = self.items.pop(key, None)
        if value is not None:
            self.total -= self.weigh(value)


class ConversationStore:
    """Every conversation the emulator serves, plus the request counters tests assert on."""

    def __init__(self, conversations: int, seed: int, end_us: int | None = None) -> None:
        self.seed = seed
        self.id_rng = random.Random(f"{seed}:live")
        self.request_counts: Counter[str] = Counter()
        self.request_log: list[tuple[str, str]] = []
        self.rejected_counts: Counter[int] = Counter()
        self.turns_created: Counter[tuple[str, str]] = Counter()
        self.committed_turns: list[CommittedTurn] = []
        self._lock = threading.RLock()
        self._busy: set[str] = set()
        self._next_index = conversations
        end = start_of_today_micros() if end_us is None else end_us
        self._generated = _Recent(_GENERATED_CACHE)
        self._bodies = _Recent(_BODY_CACHE_BYTES, len)
        self._records: dict[str, _Record] = {}
        self._order: list[str] = []
        for index in range(conversations):
            meta = synthetic_conversation(seed, index, conversations, end)
            self._records[meta["id"]] = _Record(meta=meta, synthetic_index=index)
            self._order.append(meta["id"])

    # Reads used by tests and by the server.

    def conversations_newest_first(self) -> list[dict]:
        """Every conversation object, newest first, as list pages serve them."""
        with self._lock:
            return [dict(self._records[cid].meta) for cid in self._order]

    def conversation(self, conversation_id: str) -> dict:
        """The conversation object (KeyError if unknown)."""
        return dict(self._records[conversation_id].meta)

    def history(self, conversation_id: str) -> list[dict]:
        """The conversation's entries in append order (KeyError if unknown)."""
        with self._lock:
            return [dict(entry) for entry in self._entries(self._records[conversation_id])]

    def __contains__(self, conversation_id: object) -> bool:
        """Whether the conversation exists."""
        return conversation_id in self._records

    def __len__(self) -> int:
        """How many conversations there are."""
        return len(self._order)

    def reply_text(self, inputs_text: str) -> str:
        """The deterministic assistant reply for an input text (see emulator.replies)."""
        return replies.reply_text(inputs_text)

    def _entries(self, record: _Record) -> list[dict]:
        """The entries to read (never mutate: a synthetic history may be shared by the cache)."""
        if record.entries is not None:
            return record.entries
        entries = self._generated.recall(record.meta["id"])
        if entries is None:
            entries = synthetic_history(self.seed, record.synthetic_index, record.meta)
            self._generated.remember(record.meta["id"], entries)
        return entries

    def _body(
        self, conversation_id: str, kind: str, build: Callable[[_Record], dict]
    ) -> bytes | None:
        record = self._records.get(conversation_id)
        if record is None:
            return None
        body = self._bodies.recall((conversation_id, kind))
        if body is None:
            body = orjson.dumps(build(record))
            self._bodies.remember((conversation_id, kind), body)
        return body

    def _forget(self, conversation_id: str) -> None:
        self._generated.discard(conversation_id)
        self._bodies.discard((conversation_id, "history"))
        self._bodies.discard((conversation_id, "messages"))

    # Serialized bodies, cached until the conversation changes.

    def list_json(self, page: int, page_size: int, metadata: dict | None) -> bytes:
        """One list page: a bare JSON array of conversation objects, newest first."""
        with self._lock:
            if metadata is None:
                ids = self._order[page * page_size : (page + 1) * page_size]
                records = [self._records[cid] for cid in ids]
            else:
                matching = [
                    self._records[cid]
                    for cid in self._order
                    if _metadata_matches(self._records[cid].meta, metadata)
                ]
                records = matching[page * page_size : (page + 1) * page_size]
            return b"[" + b",".join(_meta_json(record) for record in records) + b"]"

    def conversation_json(self, conversation_id: str) -> bytes | None:
        """The conversation object as JSON, or None if unknown."""
        record = self._records.get(conversation_id)
        return None if record is None else _meta_json(record)

    def history_json(self, conversation_id: str) -> bytes | None:
        """The ConversationHistory body, or None if unknown."""
        with self._lock:
            return self._body(conversation_id, "history", self._history_payload)

    def messages_json(self, conversation_id: str) -> bytes | None:
        """The ConversationMessages body (message entries only), or None if unknown."""
        with self._lock:
            return self._body(conversation_id, "messages", self._messages_payload)

    def _history_payload(self, record: _Record) -> dict:
        return {
            "object": "conversation.history",
            "conversation_id": record.meta["id"],
            "entries": self._entries(record),
        }

    def _messages_payload(self, record: _Record) -> dict:
        return {
            "object": "conversation.messages",
            "conversation_id": record.meta["id"],
            "messages": [e for e in self._entries(record) if e["type"] in _MESSAGE_TYPES],
        }

    def entries_through(self, conversation_id: str, entry_id: str) -> list[dict] | None:
        """The history up to and including `entry_id`, or None if it has no such entry."""
        with self._lock:
            entries = self._entries(self._records[conversation_id])
            for position, entry in enumerate(entries):
                if entry.get("id") == entry_id:
                    return [dict(kept) for kept in entries[: position + 1]]
            return None

    # Mutations.

    def create(self, meta: dict, entries: list[dict]) -> None:
        """Add a conversation (started or restarted) at the head of the list."""
        with self._lock:
            self._records[meta["id"]] = _Record(meta=meta, synthetic_index=None, entries=entries)
            self._order.insert(0, meta["id"])

    def extend(self, conversation_id: str, entries: list[dict], now_us: int) -> None:
        """Append entries to a conversation; its updated_at moves forward."""
        with self._lock:
            record = self._records[conversation_id]
            record.entries = [*self._entries(record), *entries]
            updated = max(now_us, parse_timestamp(record.meta["updated_at"]) + 1)
            record.meta = record.meta | {"updated_at": format_timestamp(updated)}
            record.meta_json = None
            self._forget(conversation_id)

    def touch(self, conversation_id: str) -> None:
        """Append a user turn and its reply, as a real append would: updated_at moves."""
        with self._lock:
            record = self._records[conversation_id]
            text = f"Follow-up {self.id_rng.getrandbits(32):08x}: any news on this?"
            now = now_micros()
            turn = build_turn(
                record.meta, text, now, self.id_rng, function_calls_end_turn=False, thinking=False
            )
            self.extend(conversation_id, turn.inputs + turn.outputs, now)

    def add_conversation(self) -> dict:
        """A new synthetic conversation, created now, at the head of the list."""
        with self._lock:
            index = self._next_index
            self._next_index += 1
            meta = synthetic_conversation(self.seed, index, 1, now_micros())
            head_created = (
                parse_timestamp(self._records[self._order[0]].meta["created_at"])
                if self._order
                else 0
            )
            created = max(now_micros() - 1_000_000, head_created + 1)
            updated = max(now_micros(), created + 1_000)
            meta["created_at"] = format_timestamp(created)
            meta["updated_at"] = format_timestamp(updated)
            self._records[meta["id"]] = _Record(meta=meta, synthetic_index=index)
            self._order.insert(0, meta["id"])
            return dict(meta)

    def delete(self, conversation_id: str) -> None:
        """Remove a conversation (KeyError if unknown)."""
        with self._lock:
            del self._records[conversation_id]
            self._order.remove(conversation_id)
            self._forget(conversation_id)

    # Concurrency: one completion at a time per conversation, as the API enforces.

    def claim(self, conversation_id: str) -> bool:
        """Mark the conversation as running a completion; False if it already is."""
        with self._lock:
            if conversation_id in self._busy:
                return False
            self._busy.add(conversation_id)
            return True

    def is_busy(self, conversation_id: str) -> bool:
        """Whether the conversation is running a completion right now."""
        return conversation_id in self._busy

    def release(self, conversation_id: str) -> None:
        """The conversation's completion has finished."""
        with self._lock:
            self._busy.discard(conversation_id)

    # What was asked.

    def record(self, operation: str, conversation_id: str) -> None:
        """Count one request that reached an operation (conversation id from the URL, or '')."""
        self.request_counts[operation] += 1
        self.request_log.append((operation, conversation_id))

    def record_turn(
        self, operation: str, conversation_id: str, entries: list[dict], metadata: dict | None
    ) -> None:
        """Count one stored turn of `operation` ('start', 'append' or 'restart', streamed or
        not) on the conversation it landed in; `metadata` is the request's."""
        with self._lock:
            self.turns_created[(operation, conversation_id)] += 1
            entry_ids = tuple(entry["id"] for entry in entries)
            self.committed_turns.append(
                CommittedTurn(operation, conversation_id, entry_ids, metadata)
            )

    def record_rejection(self, status: int) -> None:
        """Count one request turned away before any operation ran (401, 429 or a fault)."""
        self.rejected_counts[status] += 1

    def reset_counts(self) -> None:
        """Forget the requests counted so far."""
        with self._lock:
            self.request_counts.clear()
            self.request_log.clear()
            self.rejected_counts.clear()
            self.turns_created.clear()
            self.committed_turns.clear()


def _meta_json(record: _Record) -> bytes:
    if record.meta_json is None:
        record.meta_json = orjson.dumps(record.meta)
    return record.meta_json


def _metadata_matches(meta: dict, wanted: dict) -> bool:
    metadata = meta.get("metadata") or {}
    return all(metadata.get(key) == value for key, value in wanted.items())

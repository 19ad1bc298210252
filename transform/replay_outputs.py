"""The assistant's answer read back: from stream events, a response, or the stored history.

A stream event is anything with the fields below (extract.events.StreamEvent is one): this
module needs no HTTP client to read them.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

OUTPUT_SEPARATOR = "\n\n"


class StreamEvent(Protocol):
    """One received SSE event: its type, parsed JSON data, raw data text, and arrival times."""

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> dict[str, Any]: ...

    @property
    def raw(self) -> str: ...

    @property
    def received_at(self) -> datetime: ...

    @property
    def elapsed_ms(self) -> float: ...


INPUT_TYPES = ("message.input", "function.result")
# Stream event type -> the entry type its events build (by the entry `id` they carry).
ENTRY_OF_EVENT = {
    "message.output.delta": "message.output",
    "function.call.delta": "function.call",
    "tool.execution.started": "tool.execution",
    "tool.execution.delta": "tool.execution",
    "tool.execution.done": "tool.execution",
    "agent.handoff.started": "agent.handoff",
    "agent.handoff.done": "agent.handoff",
}
EVENT_ONLY_KEYS = ("type", "content", "arguments", "content_index", "output_index")
FINISH_MESSAGE, FINISH_FUNCTION_CALL = "message", "function_call"


@dataclass(frozen=True)
class AssistantOutput:
    """The assistant's answer to one turn (or a row's turns): its text, the last message entry
    id, usage, and every output entry (messages, tool executions, function calls, handoffs)."""

    text: str
    entry_id: str | None
    usage: dict[str, Any] = field(default_factory=dict)
    entries: tuple[dict[str, Any], ...] = ()

    @property
    def function_calls(self) -> list[dict[str, Any]]:
        """Every function call of the output: name, arguments and tool_call_id."""
        return [
            {key: entry.get(key) for key in ("name", "arguments", "tool_call_id")}
            for entry in self.entries
            if entry.get("type") == "function.call"
        ]

    @property
    def finish(self) -> str | None:
        """How the output ends: `message`, `function_call` (the client must answer), or the
        type of whatever entry came last; None when there is no output."""
        if not self.entries:
            return None
        last = self.entries[-1].get("type", "message.output")
        return {"message.output": FINISH_MESSAGE, "function.call": FINISH_FUNCTION_CALL}.get(
            last, last
        )

    @property
    def agent_id(self) -> str | None:
        """The agent that answered last (after a handoff, the agent handed to)."""
        agent = None
        for entry in self.entries:
            agent = entry.get("next_agent_id") or entry.get("agent_id") or agent
        return agent

    def then(self, later: "AssistantOutput") -> "AssistantOutput":
        """This output followed by a later turn's (a function-call round): the later text is
        the answer, entries accumulate, usage adds up."""
        return AssistantOutput(
            later.text,
            later.entry_id,
            merged_usage(self.usage, later.usage),
            (*self.entries, *later.entries),
        )


@dataclass(frozen=True)
class StreamSummary:
    """What a list of stream events says: the conversation, the output so far, how it ended."""

    conversation_id: str | None
    output: AssistantOutput
    done: bool
    error: str | None
    ttft_ms: float | None


def content_text(content: Any) -> str:
    """The text of a message content: a string, one chunk, or a list of chunks (text only)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text", "") if content.get("type", "text") == "text" else ""
    if isinstance(content, list):
        return "".join(content_text(chunk) for chunk in content)
    return ""


def summarize_stream(events: Sequence[StreamEvent]) -> StreamSummary:
    """Assemble the streamed output per entry and note how (and whether) it ended."""
    conversation_id = None
    entries: dict[str, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    done, error, ttft_ms = False, None, None
    for event in events:
        data = event.data
        if event.type == "conversation.response.started":
            conversation_id = data.get("conversation_id") or conversation_id
        elif event.type in ENTRY_OF_EVENT:
            if ttft_ms is None and event.type == "message.output.delta":
                ttft_ms = event.elapsed_ms
            entry = entries.setdefault(str(data.get("id")), {"type": ENTRY_OF_EVENT[event.type]})
            _add_event(entry, data)
        elif event.type == "conversation.response.done":
            done, usage = True, data.get("usage") or {}
        elif event.type == "conversation.response.error":
            error = f"conversation.response.error {data.get('code')}: {data.get('message')}"
    output = _output_of_entries([_finished(entry) for entry in entries.values()], usage)
    return StreamSummary(conversation_id, output, done, error, ttft_ms)


def _add_event(entry: dict[str, Any], data: dict[str, Any]) -> None:
    """Fold one event into the entry it builds: arguments and content pieces are appended."""
    entry.update({k: v for k, v in data.items() if k not in EVENT_ONLY_KEYS})
    if isinstance(data.get("arguments"), str):
        entry["arguments"] = entry.get("arguments", "") + data["arguments"]
    if "content" in data:
        chunks = entry.setdefault("content", {})
        piece = data["content"]
        piece = {"type": "text", "text": piece} if isinstance(piece, str) else piece
        index = data.get("content_index", 0)
        if index in chunks:
            chunks[index] = _joined_chunk(chunks[index], piece)
        else:
            chunks[index] = dict(piece) if isinstance(piece, dict) else piece


def _joined_chunk(chunk: Any, piece: Any) -> Any:
    """Two streamed pieces of one content chunk as one: text, or thinking parts, end to end."""
    if not isinstance(chunk, dict) or not isinstance(piece, dict):
        return chunk
    if chunk.get("type") == "text" and piece.get("type") == "text":
        return chunk | {"text": chunk.get("text", "") + piece.get("text", "")}
    if chunk.get("type") == "thinking" and piece.get("type") == "thinking":
        parts = [dict(part) for part in chunk.get("thinking") or []]
        for part in piece.get("thinking") or []:
            if parts and parts[-1].get("type") == part.get("type") == "text":
                parts[-1]["text"] = parts[-1].get("text", "") + part.get("text", "")
            else:
                parts.append(dict(part))
        return chunk | {"thinking": parts}
    return chunk


def _finished(entry: dict[str, Any]) -> dict[str, Any]:
    """A streamed entry with its content as the API stores it: a string when it is all text."""
    chunks = entry.get("content")
    if not isinstance(chunks, dict):
        return entry
    content = [chunks[index] for index in sorted(chunks)]
    if len(content) == 1 and isinstance(content[0], dict) and content[0].get("type") == "text":
        return entry | {"content": content[0].get("text", "")}
    return entry | {"content": content}


def response_output(response: dict[str, Any]) -> AssistantOutput:
    """The output of a non-streamed ConversationResponse."""
    return _output_of_entries(response.get("outputs") or [], response.get("usage") or {})


def history_turn(history: dict[str, Any], known_entries: int = 0) -> AssistantOutput | None:
    """The last turn stored after the first `known_entries` entries of a history: the entries
    after its last input (None when no answer was added: the turn has not landed)."""
    entries = (history.get("entries") or [])[known_entries:]
    if not entries:
        return None
    inputs = [n for n, entry in enumerate(entries) if entry.get("type") in INPUT_TYPES]
    outputs = entries[inputs[-1] + 1 :] if inputs else entries
    return _output_of_entries(outputs, {}) if outputs else None


def merged_usage(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two usage objects added up: numbers summed, nested counts (`connectors`) merged."""
    merged = dict(first)
    for key, value in second.items():
        mine = merged.get(key)
        if isinstance(value, bool) or value is None:
            merged[key] = value if mine is None else mine
        elif isinstance(value, int | float) and isinstance(mine, int | float):
            merged[key] = mine + value
        elif isinstance(value, dict) and isinstance(mine, dict):
            merged[key] = merged_usage(mine, value)
        else:
            merged[key] = value
    return merged


def _output_of_entries(entries: Iterable[dict[str, Any]], usage: dict[str, Any]) -> AssistantOutput:
    kept = tuple(entries)
    messages = [e for e in kept if e.get("type", "message.output") == "message.output"]
    return AssistantOutput(
        text=OUTPUT_SEPARATOR.join(content_text(m.get("content")) for m in messages),
        entry_id=messages[-1].get("id") if messages else None,
        usage=usage,
        entries=kept,
    )

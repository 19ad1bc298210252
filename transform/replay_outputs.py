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


@dataclass(frozen=True)
class AssistantOutput:
    """The assistant's answer to one turn: its text, the last message entry id, and usage."""

    text: str
    entry_id: str | None
    usage: dict[str, Any] = field(default_factory=dict)


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
    """Assemble the streamed output per message entry and note how (and whether) it ended."""
    conversation_id = None
    texts: dict[str, list[str]] = {}
    usage: dict[str, Any] = {}
    done, error, ttft_ms = False, None, None
    for event in events:
        data = event.data
        if event.type == "conversation.response.started":
            conversation_id = data.get("conversation_id") or conversation_id
        elif event.type == "message.output.delta":
            if ttft_ms is None:
                ttft_ms = event.elapsed_ms
            texts.setdefault(str(data.get("id")), []).append(content_text(data.get("content")))
        elif event.type == "conversation.response.done":
            done, usage = True, data.get("usage") or {}
        elif event.type == "conversation.response.error":
            error = f"conversation.response.error {data.get('code')}: {data.get('message')}"
    output = AssistantOutput(
        text=OUTPUT_SEPARATOR.join("".join(parts) for parts in texts.values()),
        entry_id=next(reversed(texts), None),
        usage=usage,
    )
    return StreamSummary(conversation_id, output, done, error, ttft_ms)


def response_output(response: dict[str, Any]) -> AssistantOutput:
    """The output of a non-streamed ConversationResponse."""
    return _output_of_entries(response.get("outputs") or [], response.get("usage") or {})


def recovered_output(history: dict[str, Any], prompt: str) -> AssistantOutput | None:
    """The answer stored after our input (the last message.input equal to the prompt), if any."""
    entries = history.get("entries") or []
    ours = [
        position
        for position, entry in enumerate(entries)
        if entry.get("type") == "message.input" and content_text(entry.get("content")) == prompt
    ]
    if not ours:
        return None
    output = _output_of_entries(entries[ours[-1] + 1 :], {})
    return output if output.entry_id is not None else None


def _output_of_entries(entries: Iterable[dict[str, Any]], usage: dict[str, Any]) -> AssistantOutput:
    messages = [e for e in entries if e.get("type", "message.output") == "message.output"]
    return AssistantOutput(
        text=OUTPUT_SEPARATOR.join(content_text(m.get("content")) for m in messages),
        entry_id=messages[-1].get("id") if messages else None,
        usage=usage,
    )

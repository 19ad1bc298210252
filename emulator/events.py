"""The SSE events a streamed turn sends, built from the same outputs a non-streamed turn returns."""

import orjson

from emulator.replies import reply_pieces

_ARGUMENT_PIECES = 3
DELTAS_BEFORE_ERROR = 3


def _pieces(text: str, count: int) -> list[str]:
    """`text` in `count` pieces (fewer if it is short; one empty piece if it is empty)."""
    size = max(-(-len(text) // count), 1)
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


def _chunk_pieces(chunk: dict) -> list:
    """What the deltas of one content chunk carry: text word by word, thinking as several
    thinking chunks (one sentence part each), any other chunk whole."""
    if chunk.get("type") == "text":
        return reply_pieces(chunk["text"])
    if chunk.get("type") == "thinking":
        return [
            chunk | {"thinking": [part | {"text": piece}]}
            for part in chunk["thinking"]
            for piece in reply_pieces(part.get("text", ""))
        ]
    return [chunk]


def _message_events(entry: dict, base: dict) -> list[tuple[str, dict]]:
    head = base | {"id": entry["id"]}
    tail = {"model": entry["model"], "agent_id": entry["agent_id"], "role": "assistant"}
    content = entry["content"]
    chunks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    events = []
    for index, chunk in enumerate(chunks):
        for piece in _chunk_pieces(chunk):
            data = head | {"content_index": index} | tail | {"content": piece}
            events.append(("message.output.delta", {"type": "message.output.delta"} | data))
    return events


def _function_call_events(entry: dict, base: dict) -> list[tuple[str, dict]]:
    head = {"type": "function.call.delta"} | base | {"id": entry["id"]}
    head |= {"model": entry["model"], "agent_id": entry["agent_id"], "name": entry["name"]}
    head["tool_call_id"] = entry["tool_call_id"]
    head["confirmation_status"] = entry.get("confirmation_status")
    pieces = _pieces(entry["arguments"], _ARGUMENT_PIECES)
    return [("function.call.delta", head | {"arguments": piece}) for piece in pieces]


def _tool_events(entry: dict, base: dict) -> list[tuple[str, dict]]:
    """Started (empty arguments), the arguments in deltas, then done with the tool's info."""
    head = base | {"id": entry["id"], "name": entry["name"]}
    started = {"type": "tool.execution.started"} | head | {"arguments": ""}
    deltas = [
        ("tool.execution.delta", {"type": "tool.execution.delta"} | head | {"arguments": piece})
        for piece in _pieces(entry["arguments"], _ARGUMENT_PIECES)
    ]
    done = {"type": "tool.execution.done"} | head | {"info": entry["info"]}
    return [("tool.execution.started", started), *deltas, ("tool.execution.done", done)]


def _handoff_events(entry: dict, base: dict) -> list[tuple[str, dict]]:
    head = base | {"id": entry["id"]}
    started = {"type": "agent.handoff.started"} | head
    started |= {
        "previous_agent_id": entry["previous_agent_id"],
        "previous_agent_name": entry["previous_agent_name"],
    }
    done = {"type": "agent.handoff.done"} | head
    done |= {"next_agent_id": entry["next_agent_id"], "next_agent_name": entry["next_agent_name"]}
    return [("agent.handoff.started", started), ("agent.handoff.done", done)]


_EVENTS_BY_ENTRY_TYPE = {
    "message.output": _message_events,
    "function.call": _function_call_events,
    "tool.execution": _tool_events,
    "agent.handoff": _handoff_events,
}


def _started_event(conversation_id: str, created_at: str) -> tuple[str, dict]:
    data = {
        "type": "conversation.response.started",
        "created_at": created_at,
        "conversation_id": conversation_id,
    }
    return ("conversation.response.started", data)


def _output_events(outputs: list[dict], created_at: str) -> list[tuple[str, dict]]:
    events = []
    for index, entry in enumerate(outputs):
        base = {"created_at": created_at, "output_index": index}
        events.extend(_EVENTS_BY_ENTRY_TYPE[entry["type"]](entry, base))
    return events


def response_events(
    conversation_id: str, outputs: list[dict], usage: dict, created_at: str
) -> list[tuple[str, dict]]:
    """The (event type, data) sequence of a streamed turn, from started to done."""
    done = {"type": "conversation.response.done", "created_at": created_at, "usage": usage}
    return [
        _started_event(conversation_id, created_at),
        *_output_events(outputs, created_at),
        ("conversation.response.done", done),
    ]


def failed_response_events(
    conversation_id: str, outputs: list[dict], created_at: str, message: str, code: int
) -> list[tuple[str, dict]]:
    """A streamed turn that fails: started, its first few message deltas, then the error event."""
    events = [_started_event(conversation_id, created_at)]
    deltas = 0
    for kind, data in _output_events(outputs, created_at):
        if deltas == DELTAS_BEFORE_ERROR:
            break
        events.append((kind, data))
        deltas += kind == "message.output.delta"
    error = {
        "type": "conversation.response.error",
        "created_at": created_at,
        "message": message,
        "code": code,
    }
    events.append(("conversation.response.error", error))
    return events


def encode_event(event_type: str, data: dict) -> bytes:
    """One SSE frame: `event:` line, one-line JSON `data:` line, blank line."""
    return b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

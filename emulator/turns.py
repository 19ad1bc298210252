"""One completion turn: the entries a request's inputs become and the outputs the 'model' adds."""

import hashlib
import random
from dataclasses import dataclass

import orjson

from emulator.catalog import AGENTS, AGENTS_BY_ID, DEFAULT_AGENT_MODEL
from emulator.formats import entity_id, format_timestamp, tool_call_id
from emulator.replies import agent_step, inputs_text, reply_text, usage_for

_INPUT_ID_PREFIXES = {
    "message.input": "msg",
    "message.output": "msg",
    "function.result": "msg",
    "function.call": "fc",
    "tool.execution": "tool_exec",
    "agent.handoff": "handoff",
}


@dataclass(frozen=True)
class Turn:
    """What one start/append/restart adds to a conversation, and its usage."""

    inputs: list[dict]
    outputs: list[dict]
    usage: dict[str, int]


def _stamp(entry_type: str, now: str) -> dict:
    return {"object": "entry", "type": entry_type, "created_at": now, "completed_at": now}


def input_entries(inputs: str | list[dict], now_us: int, rng: random.Random) -> list[dict]:
    """The history entries for a request's (already validated) `inputs`."""
    now = format_timestamp(now_us)
    if isinstance(inputs, str):
        inputs = [{"role": "user", "content": inputs}]
    entries = []
    for item in inputs:
        entry_type = item.get("type", "message.input")
        entry = _stamp(entry_type, now)
        entry["id"] = entity_id(_INPUT_ID_PREFIXES[entry_type], rng)
        if entry_type == "message.input":
            entry |= {"role": item["role"], "content": item["content"]}
            entry["prefix"] = item.get("prefix", False)
        else:
            skipped = ("object", "type", "id", "created_at", "completed_at")
            entry |= {key: value for key, value in item.items() if key not in skipped}
        entries.append(entry)
    return entries


def _pick(text: str, salt: str, count: int) -> int:
    digest = hashlib.blake2b(f"{salt}:{text}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest()) % count


def completion_outputs(
    conversation: dict, text: str, now_us: int, rng: random.Random
) -> list[dict]:
    """The outputs of a turn whose inputs carry `text`: an agent may first use a tool, call a
    function or hand off (decided by the text), then the assistant message answers."""
    now = format_timestamp(now_us)
    agent_id = conversation.get("agent_id")
    agent = AGENTS_BY_ID.get(agent_id) if agent_id else None
    model = conversation.get("model") or (agent.model if agent else DEFAULT_AGENT_MODEL)
    step = agent_step(text) if agent_id else "none"
    topic = " ".join(text.split()[:5]) or "your request"
    outputs = []
    reference = None
    if step == "tool":
        arguments = orjson.dumps({"query": topic}).decode()
        outputs.append(
            _stamp("tool.execution", now)
            | {"agent_id": agent_id, "model": model, "id": entity_id("tool_exec", rng)}
            | {"name": "web_search", "arguments": arguments}
            | {"info": {"query": topic, "results": 1 + _pick(text, "results", 9)}}
        )
        reference = {
            "type": "tool_reference",
            "tool": "web_search",
            "title": f"Results for {topic}",
            "url": f"https://example.com/search/{_pick(text, 'url', 10**6)}",
            "favicon": None,
            "description": None,
        }
    elif step == "handoff":
        others = [candidate for candidate in AGENTS if candidate.id != agent_id]
        following = others[_pick(text, "handoff", len(others))]
        outputs.append(
            _stamp("agent.handoff", now)
            | {"id": entity_id("handoff", rng)}
            | {
                "previous_agent_id": agent_id,
                "previous_agent_name": agent.name if agent else "Agent",
                "next_agent_id": following.id,
                "next_agent_name": following.name,
            }
        )
        agent_id, model = following.id, following.model
    elif step == "function":
        arguments = orjson.dumps({"order_id": _pick(text, "order", 10**6), "verbose": True})
        outputs.append(
            _stamp("function.call", now)
            | {"agent_id": agent_id, "model": model, "id": entity_id("fc", rng)}
            | {"tool_call_id": tool_call_id(rng), "name": "lookup_order"}
            | {"arguments": arguments.decode()}
        )
    reply = reply_text(text)
    content: str | list[dict] = reply
    if reference is not None:
        content = [{"type": "text", "text": reply}, reference]
    outputs.append(
        _stamp("message.output", now)
        | {"agent_id": agent_id, "model": model, "id": entity_id("msg", rng)}
        | {"role": "assistant", "content": content}
    )
    return outputs


def build_turn(
    conversation: dict, inputs: str | list[dict], now_us: int, rng: random.Random
) -> Turn:
    """The entries and usage of one completion on `conversation` for `inputs`."""
    text = inputs_text(inputs)
    return Turn(
        inputs=input_entries(inputs, now_us, rng),
        outputs=completion_outputs(conversation, text, now_us, rng),
        usage=usage_for(text),
    )

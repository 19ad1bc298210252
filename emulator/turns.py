"""One completion turn: the entries a request's inputs become and the outputs the 'model' adds."""

import hashlib
import random
from dataclasses import dataclass

import orjson

from emulator.catalog import AGENTS, AGENTS_BY_ID, DEFAULT_AGENT_MODEL
from emulator.formats import entity_id, format_timestamp, tool_call_id
from emulator.replies import (
    agent_step,
    function_results,
    json_reply,
    reply_text,
    turn_text,
    usage_for,
)

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


def input_entries(inputs: str | list[dict] | None, now_us: int, rng: random.Random) -> list[dict]:
    """The history entries for a request's (already validated) `inputs`; none if omitted."""
    now = format_timestamp(now_us)
    if inputs is None:
        return []
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


def _message_content(model: str, reply: str, topic: str, thinking: bool) -> str | list[dict]:
    """A reasoning ('magistral') model thinks first: a thinking chunk, then the text chunk."""
    if not (thinking and model.startswith("magistral")):
        return reply
    thought = f"The user asks about {topic}. Check the facts, then answer briefly."
    return [
        {"type": "thinking", "thinking": [{"type": "text", "text": thought}]},
        {"type": "text", "text": reply},
    ]


def completion_outputs(
    conversation: dict,
    text: str,
    step: str,
    now_us: int,
    rng: random.Random,
    function_calls_end_turn: bool = True,
    thinking: bool = True,
) -> list[dict]:
    """The outputs of a turn whose inputs carry `text`: an agent may first use a tool, call a
    function or hand off (`step`), then the assistant message answers.

    A function call is run by the client, so it ends the turn when `function_calls_end_turn`
    (the API's behaviour); the answer comes with the turn that hands back its result.
    """
    now = format_timestamp(now_us)
    agent_id = conversation.get("agent_id")
    agent = AGENTS_BY_ID.get(agent_id) if agent_id else None
    model = conversation.get("model") or (agent.model if agent else DEFAULT_AGENT_MODEL)
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
            | {"arguments": arguments.decode(), "confirmation_status": None}
        )
        if function_calls_end_turn:
            return outputs
    reply = json_reply(text) if _wants_json(conversation) else reply_text(text)
    content = _message_content(model, reply, topic, thinking)
    if reference is not None:
        content = [{"type": "text", "text": reply}, reference]
    outputs.append(
        _stamp("message.output", now)
        | {"agent_id": agent_id, "model": model, "id": entity_id("msg", rng)}
        | {"role": "assistant", "content": content}
    )
    return outputs


def _wants_json(conversation: dict) -> bool:
    """A model conversation whose completion_args ask for a JSON answer (a judge's, say)."""
    response_format = (conversation.get("completion_args") or {}).get("response_format") or {}
    return response_format.get("type") in ("json_object", "json_schema")


def turn_step(conversation: dict, inputs: str | list[dict] | None) -> str:
    """What the 'model' does before answering (see agent_step); handing back function
    results is always answered directly."""
    if not conversation.get("agent_id") or function_results(inputs):
        return "none"
    return agent_step(turn_text(inputs))


def build_turn(
    conversation: dict,
    inputs: str | list[dict] | None,
    now_us: int,
    rng: random.Random,
    function_calls_end_turn: bool = True,
    thinking: bool = True,
) -> Turn:
    """The entries and usage of one completion on `conversation` for `inputs`."""
    text = turn_text(inputs)
    step = turn_step(conversation, inputs)
    outputs = completion_outputs(
        conversation, text, step, now_us, rng, function_calls_end_turn, thinking
    )
    return Turn(
        inputs=input_entries(inputs, now_us, rng),
        outputs=outputs,
        usage=usage_for(text, "web_search" if step == "tool" else None),
    )

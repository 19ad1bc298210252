"""Deterministic synthetic conversations: headers up front, each history lazily from (seed, index).

Every entry type and content form of the API shows up: string and chunk-list contents (text,
image_url, document_url, tool_file, tool_reference, thinking), function calls with string and
object arguments, function results, tool executions, agent handoffs, unicode, empty and very
long texts, null `completed_at`, metadata on some conversations.
"""

import random

import orjson

from emulator.catalog import (
    AGENTS,
    AGENTS_BY_ID,
    BUILT_IN_CONNECTORS,
    CITIES,
    CONNECTOR_TOOLS,
    FUNCTION_TOOLS,
    MODELS,
    UNICODE_TEXTS,
    WORDS,
    Agent,
)
from emulator.formats import (
    DAY_US,
    HOUR_US,
    entity_id,
    format_timestamp,
    parse_timestamp,
    tool_call_id,
)

SPAN_US = 30 * DAY_US
_LONG_TEXT_CHARS = 24_000
_SENTENCE_BITS = 12


def _sentence_pool() -> tuple[str, ...]:
    """Pre-drawn sentences: picking one costs a single random call, which keeps generation fast."""
    rng = random.Random("sentences")
    return tuple(
        " ".join(rng.choices(WORDS, k=rng.randint(4, 30))).capitalize() + "."
        for _ in range(2**_SENTENCE_BITS)
    )


_SENTENCES = _sentence_pool()


def _rng(seed: int, index: int, part: str) -> random.Random:
    return random.Random(f"{seed}:{index}:{part}")


def _sentence(rng: random.Random) -> str:
    return _SENTENCES[rng.getrandbits(_SENTENCE_BITS)]


def _phrase(rng: random.Random, low: int, high: int) -> str:
    """A short capitalised phrase of `low` to `high` words, for names, titles and queries."""
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return " ".join(words).capitalize() + "."


def _text(rng: random.Random, long_texts: bool) -> str:
    """A message text: mostly sentences, sometimes unicode, empty or (in big conversations) huge."""
    roll = rng.random()
    if long_texts and roll < 0.08:
        paragraph = " ".join(_sentence(rng) for _ in range(8))
        return (paragraph + "\n\n") * (_LONG_TEXT_CHARS // (len(paragraph) + 2) + 1)
    if roll < 0.03:
        return ""
    if roll < 0.12:
        return rng.choice(UNICODE_TEXTS)
    return " ".join(_sentence(rng) for _ in range(rng.randint(1, 3)))


def synthetic_conversation(seed: int, index: int, total: int, end_us: int) -> dict:
    """The header of synthetic conversation `index` of `total`; index 0 is the newest.

    created_at falls in the 30 days before `end_us` minus an hour, strictly decreasing with
    the index, and updated_at is at most an hour later, so it never passes `end_us`.
    """
    rng = _rng(seed, index, "conversation")
    slot = (SPAN_US - HOUR_US) / max(total, 1)
    created = int(end_us - HOUR_US - slot * (index + rng.random() * 0.9) - 1)
    updated = created + rng.randint(2_000_000, HOUR_US - 1)
    header: dict = {}
    is_agent = rng.random() < 0.4
    if not is_agent:
        tools = rng.sample(FUNCTION_TOOLS + CONNECTOR_TOOLS, k=rng.choice((0, 0, 1, 2, 3)))
        header["instructions"] = rng.choice(
            (None, "", "You are a concise assistant.", _phrase(rng, 10, 40))
        )
        header["tools"] = tools
        header["completion_args"] = rng.choice(
            (
                {},
                {"temperature": 0.3},
                {"temperature": 0.7, "max_tokens": 1024, "top_p": 0.95},
                {"stop": ["\n\n"], "random_seed": 42, "response_format": {"type": "text"}},
                {"tool_choice": "auto", "presence_penalty": 0.1, "frequency_penalty": 0.2},
            )
        )
    header["name"] = rng.choice((None, None, f"Thread {index}", "Ticket triage — ünïcode"))
    header["description"] = rng.choice((None, None, _phrase(rng, 3, 12)))
    header["metadata"] = (
        {
            "team": rng.choice(("support", "sales", "research")),
            "ticket": rng.randint(1000, 99999),
            "tags": rng.sample(("vip", "refund", "bug", "eu", "beta"), k=2),
        }
        if rng.random() < 0.3
        else None
    )
    header["object"] = "conversation"
    header["id"] = entity_id("conv", rng)
    header["created_at"] = format_timestamp(created)
    header["updated_at"] = format_timestamp(updated)
    if is_agent:
        header["agent_id"] = rng.choice(AGENTS).id
        header["agent_version"] = rng.choice((None, 1, 2, 3, "7"))
    else:
        header["model"] = rng.choice(MODELS)
    return header


class _HistoryWriter:
    """Appends entries of one synthetic history, spacing their timestamps over its lifetime."""

    def __init__(self, rng: random.Random, header: dict, size: int) -> None:
        self.rng = rng
        self.entries: list[dict] = []
        self.start = parse_timestamp(header["created_at"])
        # A turn may overshoot `size` by up to three entries: keep them all before updated_at.
        self.step = (parse_timestamp(header["updated_at"]) - self.start) // (size + 4)
        self.agent = _agent_of(header)
        self.model = header.get("model") or (self.agent.model if self.agent else None)

    def _stamp(self, entry_type: str) -> dict:
        position = len(self.entries)
        created = self.start + self.step * position
        roll = self.rng.random()
        completed = None
        if roll >= 0.1:
            completed = format_timestamp(created + 1_000 + int(roll * max(self.step - 1_000, 0)))
        return {
            "object": "entry",
            "type": entry_type,
            "created_at": format_timestamp(created),
            "completed_at": completed,
        }

    def _by(self) -> dict:
        return {"agent_id": self.agent.id if self.agent else None, "model": self.model}

    def message_input(self, long_texts: bool) -> None:
        rng = self.rng
        text = _text(rng, long_texts)
        content: str | list[dict] = text
        if rng.random() < 0.3:
            content = [{"type": "text", "text": text}, _attachment(rng)]
        entry = self._stamp("message.input")
        entry |= {"id": entity_id("msg", rng), "role": "user", "content": content, "prefix": False}
        self.entries.append(entry)

    def message_output(self, long_texts: bool, reference: dict | None) -> None:
        rng = self.rng
        text = _text(rng, long_texts)
        content: str | list[dict] = text
        if reference is not None:
            content = [{"type": "text", "text": text}, reference]
        elif rng.random() < 0.1:
            thought = {"type": "text", "text": _sentence(rng)}
            content = [{"type": "thinking", "thinking": [thought]}, {"type": "text", "text": text}]
        entry = {**self._stamp("message.output"), **self._by()}
        entry |= {"id": entity_id("msg", rng), "role": "assistant", "content": content}
        self.entries.append(entry)

    def function_call(self) -> None:
        rng = self.rng
        call_id = tool_call_id(rng)
        name, arguments = (
            ("get_weather", {"city": rng.choice(CITIES), "unit": "celsius"})
            if rng.random() < 0.5
            else ("lookup_order", {"order_id": rng.randint(1, 10**6)})
        )
        encoded = orjson.dumps(arguments).decode() if rng.random() < 0.5 else arguments
        entry = {**self._stamp("function.call"), **self._by()}
        entry |= {
            "id": entity_id("fc", rng),
            "tool_call_id": call_id,
            "name": name,
            "arguments": encoded,
        }
        self.entries.append(entry)
        result = self._stamp("function.result")
        result |= {
            "id": entity_id("msg", rng),
            "tool_call_id": call_id,
            "result": orjson.dumps({"ok": True, "value": _phrase(rng, 2, 8)}).decode(),
        }
        self.entries.append(result)

    def tool_execution(self) -> dict:
        """Adds a tool.execution entry and returns the tool_reference chunk citing it."""
        rng = self.rng
        name = rng.choice(BUILT_IN_CONNECTORS)
        query = _phrase(rng, 2, 6)
        entry = {**self._stamp("tool.execution"), **self._by()}
        entry |= {
            "id": entity_id("tool_exec", rng),
            "name": name,
            "arguments": orjson.dumps({"query": query}).decode(),
            "info": {"query": query, "results": rng.randint(0, 9), "cached": rng.random() < 0.5},
        }
        self.entries.append(entry)
        return {
            "type": "tool_reference",
            "tool": name,
            "title": query,
            "url": f"https://example.com/{rng.getrandbits(32):08x}",
            "favicon": None,
            "description": rng.choice((None, _phrase(rng, 3, 10))),
        }

    def handoff(self) -> None:
        rng = self.rng
        previous = self.agent
        following = rng.choice([agent for agent in AGENTS if agent is not previous])
        entry = self._stamp("agent.handoff")
        entry |= {
            "id": entity_id("handoff", rng),
            "previous_agent_id": previous.id,
            "previous_agent_name": previous.name,
            "next_agent_id": following.id,
            "next_agent_name": following.name,
        }
        self.entries.append(entry)
        self.agent = following
        self.model = following.model


def _agent_of(header: dict) -> Agent | None:
    return AGENTS_BY_ID.get(header.get("agent_id"))


def _attachment(rng: random.Random) -> dict:
    kind = rng.randrange(4)
    if kind == 0:
        return {
            "type": "image_url",
            "image_url": f"https://example.com/img/{rng.randrange(999)}.png",
        }
    if kind == 1:
        url = f"https://example.com/img/{rng.randrange(999)}.jpg"
        return {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
    if kind == 2:
        return {
            "type": "document_url",
            "document_url": f"https://example.com/docs/{rng.randrange(999)}.pdf",
            "document_name": rng.choice((None, "contract.pdf", "rapport annuel.pdf")),
        }
    return {
        "type": "tool_file",
        "tool": "code_interpreter",
        "file_id": f"{rng.getrandbits(128):032x}",
        "file_name": "plot.png",
        "file_type": "png",
    }


def synthetic_history(seed: int, index: int, header: dict) -> list[dict]:
    """The entries of synthetic conversation `index`, in append order; same every call."""
    rng = _rng(seed, index, "history")
    big = rng.random() < 0.01
    size = rng.randint(40, 120) if big else rng.randint(4, 14)
    writer = _HistoryWriter(rng, header, size)
    is_agent = writer.agent is not None
    has_functions = any(tool.get("type") == "function" for tool in header.get("tools", ()))
    while len(writer.entries) < size:
        writer.message_input(long_texts=big)
        reference = None
        roll = rng.random()
        if is_agent and roll < 0.2:
            reference = writer.tool_execution()
        elif is_agent and roll < 0.3:
            writer.handoff()
        elif (is_agent or has_functions) and roll < 0.45:
            writer.function_call()
        writer.message_output(long_texts=big, reference=reference)
    return writer.entries

"""The deterministic 'model': reply, usage and agent step, all pure functions of the input text.

Other packages' tests import these to compute what the emulator will answer.
"""

import hashlib
import json
import re

from emulator.catalog import WORDS

_PIECE = re.compile(r"\S+\s*")
_WORD = re.compile(r"\w+")
_TAGGED = re.compile(r"<(rubric|output)>\n?(.*?)\n?</\1>", re.S)
_SNIPPET_WORDS = 8
_SNIPPET_CHARS = 80


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32).digest()


def inputs_text(inputs: str | list[dict] | None) -> str:
    """The text a turn's `inputs` carry: the string itself, or its message.input texts joined."""
    if isinstance(inputs, str):
        return inputs
    if inputs is None:
        return ""
    texts = []
    for entry in inputs:
        if entry.get("type", "message.input") != "message.input":
            continue
        content = entry.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.append(
                "".join(
                    chunk.get("text", "")
                    for chunk in content
                    if isinstance(chunk, dict) and chunk.get("type") == "text"
                )
            )
    return "\n".join(texts)


def function_results(inputs: str | list[dict] | None) -> list[str]:
    """The `result` strings of the function.result entries among `inputs`."""
    if not isinstance(inputs, list):
        return []
    return [entry["result"] for entry in inputs if entry.get("type") == "function.result"]


def turn_text(inputs: str | list[dict] | None) -> str:
    """What the 'model' answers: the inputs' message texts, else the function results joined.

    A turn that only hands back function results is answered from those results.
    """
    return inputs_text(inputs) or "\n".join(function_results(inputs))


def reply_text(text: str) -> str:
    """The assistant's reply to `text`: several words, always the same for the same text."""
    digest = _digest(text)
    count = 6 + digest[0] % 10
    words = [WORDS[byte % len(WORDS)] for byte in digest[1 : 1 + count]]
    body = " ".join(words)
    snippet = " ".join(text.split()[:_SNIPPET_WORDS])[:_SNIPPET_CHARS]
    if snippet:
        return f"Noted: {snippet}. {body.capitalize()}."
    return f"Noted. {body.capitalize()}."


def json_reply(text: str) -> str:
    """The answer to a turn that asked for JSON: a judge's verdict, deterministic.

    With `<rubric>` and `<output>` sections (transform.judge's request), it passes when every
    word of the rubric appears in the output (ignoring case); any other text is judged as both.
    """
    sections = dict(_TAGGED.findall(text))
    rubric = sections.get("rubric", text)
    output_words = set(_WORD.findall(sections.get("output", text).lower()))
    missing = [word for word in _WORD.findall(rubric.lower()) if word not in output_words]
    reason = f"the output lacks: {', '.join(missing)}" if missing else "every rubric word is there"
    verdict = {"pass": not missing, "score": 0.0 if missing else 1.0, "reason": reason}
    return json.dumps(verdict)


def reply_pieces(reply: str) -> list[str]:
    """The reply split into the fragments a stream sends, one word (and its space) each."""
    return _PIECE.findall(reply)


def count_tokens(text: str) -> int:
    """The emulator's token count: whitespace-separated words."""
    return len(text.split())


def usage_for(text: str, connector: str | None = None) -> dict:
    """The usage block of a turn whose inputs carry `text`.

    A turn that ran a built-in `connector` also reports `connector_tokens` and `connectors`
    (calls per connector), and its total includes the connector tokens, as the API's does.
    """
    prompt = count_tokens(text)
    completion = count_tokens(reply_text(text))
    usage: dict = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if connector is not None:
        connector_tokens = 200 + _digest(text)[30] * 8
        usage["total_tokens"] += connector_tokens
        usage |= {"connector_tokens": connector_tokens, "connectors": {connector: 1}}
    return usage


def agent_step(text: str) -> str:
    """What an agent does before answering `text`: 'none', 'tool', 'handoff' or 'function'."""
    return ("none", "tool", "handoff", "function")[_digest(text)[31] % 4]

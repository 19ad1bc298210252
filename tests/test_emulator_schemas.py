"""The emulator's bodies and SSE events validate against the OpenAPI specs' JSON schemas."""

from functools import cache
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from emulator.replies import agent_step

SPEC_DIR = Path(__file__).resolve().parent / "fixtures" / "spec"
LATEST = "conversations.latest.openapi.yaml"
OLDER = "conversations.openapi.yaml"
HEADERS = {"Authorization": "Bearer test-token"}


@cache
def _registry(spec_name: str) -> Registry:
    document = yaml.safe_load((SPEC_DIR / spec_name).read_text())
    return Registry().with_resource(spec_name, Resource(document, DRAFT202012))


def _ref(spec_name: str, name: str) -> dict:
    return {"$ref": f"{spec_name}#/components/schemas/{name}"}


@cache
def validator(spec_name: str, name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator (formats checked) for a component, or for a conversation."""
    if name == "Conversation":
        schema = {
            "anyOf": [_ref(spec_name, "ModelConversation"), _ref(spec_name, "AgentConversation")]
        }
    else:
        schema = _ref(spec_name, name)
    return Draft202012Validator(
        schema, registry=_registry(spec_name), format_checker=FormatChecker()
    )


def errors_of(spec_name: str, name: str, instance: object) -> list[str]:
    """Every schema error, each with its path."""
    found = validator(spec_name, name).iter_errors(instance)
    return [f"{list(error.absolute_path)}: {error.message[:200]}" for error in found]


def assert_valid(spec_name: str, name: str, instance: object) -> None:
    """Fail listing the schema errors of `instance`."""
    problems = errors_of(spec_name, name, instance)
    assert not problems, "\n".join(problems[:10])


def sse_events(text: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of an SSE body; asserts the framing is the API's."""
    events = []
    for frame in text.split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ")
        assert data_line.startswith("data: ")
        data = orjson.loads(data_line.removeprefix("data: "))
        events.append((event_line.removeprefix("event: "), data))
    return events


def strip_latest_only(item: object) -> object:
    """The same payload without the fields and chunks only the latest spec knows."""
    if isinstance(item, list):
        return [strip_latest_only(value) for value in item if not _is_thinking(value)]
    if not isinstance(item, dict):
        return item
    dropped = {"metadata", "agent_version", "guardrails", "confirmation_status"}
    if item.get("type") in ("function.call", "tool.execution"):
        dropped |= {"model", "agent_id"}
    return {key: strip_latest_only(value) for key, value in item.items() if key not in dropped}


def _is_thinking(value: object) -> bool:
    return isinstance(value, dict) and value.get("type") == "thinking"


def texts_for_every_agent_step() -> list[str]:
    """Input texts that make an agent answer directly, use a tool, hand off, call a function."""
    found: dict[str, str] = {}
    attempt = 0
    while len(found) < 4:
        text = f"Please check order {attempt}"
        found.setdefault(agent_step(text), text)
        attempt += 1
    return list(found.values())


@pytest.fixture(scope="module")
def http(emulator) -> httpx.Client:
    with httpx.Client(base_url=emulator.url, headers=HEADERS) as client:
        yield client


@pytest.fixture(scope="module")
def reads(emulator, http) -> dict[str, list]:
    """Every read body of the session emulator: list pages, conversations, histories, messages."""
    pages = [
        http.get("/v1/conversations", params={"page": p, "page_size": 25}).json() for p in range(3)
    ]
    ids = [conversation["id"] for page in pages for conversation in page]
    return {
        "pages": pages,
        "conversations": [http.get(f"/v1/conversations/{cid}").json() for cid in ids],
        "histories": [http.get(f"/v1/conversations/{cid}/history").json() for cid in ids],
        "messages": [http.get(f"/v1/conversations/{cid}/messages").json() for cid in ids],
    }


@pytest.fixture
def completions(make_emulator) -> dict[str, list]:
    """Bodies of start/append/restart, plain and streamed, on model and agent conversations."""
    emu = make_emulator(conversations=3, seed=11)
    bodies: dict[str, list] = {"responses": [], "streams": []}
    with httpx.Client(base_url=emu.url, headers=HEADERS) as client:

        def call(path: str, body: dict) -> dict:
            response = client.post(path, json=body)
            assert response.status_code == 200, response.text
            bodies["responses"].append(response.json())
            streamed = client.post(path, json=body | {"stream": True})
            assert streamed.status_code == 200, streamed.text
            assert streamed.headers["content-type"].startswith("text/event-stream")
            bodies["streams"].append(sse_events(streamed.text))
            return response.json()

        model = call(
            "/v1/conversations", {"inputs": "Hello there", "model": "mistral-small-latest"}
        )
        agent_id = "ag_" + "0" * 32
        for text in texts_for_every_agent_step():
            started = call("/v1/conversations", {"inputs": text, "agent_id": agent_id})
        chunked = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": "https://example.com/a.png"},
                ],
            }
        ]
        call(f"/v1/conversations/{model['conversation_id']}", {"inputs": chunked})
        for text in texts_for_every_agent_step():
            call(f"/v1/conversations/{started['conversation_id']}", {"inputs": text})
        history = client.get(f"/v1/conversations/{started['conversation_id']}/history").json()
        first = history["entries"][0]["id"]
        call(
            f"/v1/conversations/{started['conversation_id']}/restart",
            {"inputs": "again", "from_entry_id": first},
        )
    return bodies


def test_reads_validate_against_the_latest_spec(reads):
    assert sum(len(page) for page in reads["pages"]) == 60
    for page in reads["pages"]:
        for conversation in page:
            assert_valid(LATEST, "Conversation", conversation)
    for conversation in reads["conversations"]:
        assert_valid(LATEST, "Conversation", conversation)
    for history in reads["histories"]:
        assert_valid(LATEST, "ConversationHistory", history)
    for messages in reads["messages"]:
        assert_valid(LATEST, "ConversationMessages", messages)


def test_responses_and_stream_events_validate_against_the_latest_spec(completions):
    kinds_seen = set()
    for response in completions["responses"]:
        assert_valid(LATEST, "ConversationResponse", response)
    for events in completions["streams"]:
        for name, data in events:
            assert data["type"] == name
            assert_valid(LATEST, "ConversationEvents", {"event": name, "data": data})
            kinds_seen.add(name)
    assert kinds_seen == {
        "conversation.response.started",
        "message.output.delta",
        "tool.execution.started",
        "tool.execution.done",
        "agent.handoff.started",
        "agent.handoff.done",
        "function.call.delta",
        "conversation.response.done",
    }


def test_payloads_without_latest_only_fields_validate_against_the_older_spec(reads, completions):
    for conversation in reads["conversations"]:
        assert_valid(OLDER, "Conversation", strip_latest_only(conversation))
    for history in reads["histories"]:
        assert_valid(OLDER, "ConversationHistory", strip_latest_only(history))
    for messages in reads["messages"]:
        assert_valid(OLDER, "ConversationMessages", strip_latest_only(messages))
    for response in completions["responses"]:
        assert_valid(OLDER, "ConversationResponse", strip_latest_only(response))
    # Not vacuous: the latest-only fields really are outside the older spec.
    with_metadata = next(c for c in reads["conversations"] if c.get("metadata"))
    assert errors_of(OLDER, "Conversation", with_metadata)
    thinking = [h for h in reads["histories"] if "thinking" in orjson.dumps(h).decode()]
    assert thinking and errors_of(OLDER, "ConversationHistory", thinking[0])


def test_validation_errors_are_shaped_as_http_validation_error(emulator, http):
    bodies = [
        {"model": "mistral-small-latest"},
        {"inputs": "hi"},
        {"inputs": "hi", "model": 7, "stream": "yes"},
        {"inputs": [], "agent_id": "ag_x"},
    ]
    for body in bodies:
        response = http.post("/v1/conversations", json=body)
        assert response.status_code == 422
        assert_valid(LATEST, "HTTPValidationError", response.json())
        assert_valid(OLDER, "HTTPValidationError", response.json())
        assert response.json()["detail"]
